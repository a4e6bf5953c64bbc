using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace ControlPlane.Upstreams.KeyRing;

/// <summary>
/// The Data Protection key ring in a PostgreSQL table, so that every silo of a production cluster decrypts
/// upstream credentials that another silo encrypted. Keys are XML documents that Data Protection writes once
/// and never changes; the table is created on first use. (Data Protection's API here is synchronous.)
/// </summary>
public sealed class PostgresXmlRepository(NpgsqlDataSource dataSource) : IXmlRepository
{
    public const string Table = "controlplane_data_protection_keys";

    private int _tableReady;

    public IReadOnlyCollection<XElement> GetAllElements()
    {
        EnsureTable();
        using var command = dataSource.CreateCommand($"SELECT xml FROM {Table} ORDER BY id");
        using var reader = command.ExecuteReader();
        var elements = new List<XElement>();
        while (reader.Read()) elements.Add(XElement.Parse(reader.GetString(0)));
        return elements;
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        EnsureTable();
        using var command = dataSource.CreateCommand(
            $"INSERT INTO {Table} (friendly_name, xml) VALUES ($1, $2) ON CONFLICT (friendly_name) DO UPDATE SET xml = EXCLUDED.xml");
        command.Parameters.AddWithValue(friendlyName);
        command.Parameters.AddWithValue(element.ToString(SaveOptions.DisableFormatting));
        command.ExecuteNonQuery();
    }

    private void EnsureTable()
    {
        if (Volatile.Read(ref _tableReady) == 1) return;
        using var command = dataSource.CreateCommand(
            $"CREATE TABLE IF NOT EXISTS {Table} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, friendly_name text NOT NULL UNIQUE, xml text NOT NULL)");
        try
        {
            command.ExecuteNonQuery();
        }
        catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.UniqueViolation or PostgresErrorCodes.DuplicateTable)
        {
            // Silos starting together race on IF NOT EXISTS; the loser finds the table the winner made.
        }

        Volatile.Write(ref _tableReady, 1);
    }
}

public static class PostgresKeyRingExtensions
{
    /// <summary>Keeps the Data Protection key ring in PostgreSQL (shared by every silo) instead of on one machine's disk.</summary>
    public static IDataProtectionBuilder PersistKeysToPostgres(this IDataProtectionBuilder builder, string connectionString)
    {
        var dataSource = NpgsqlDataSource.Create(connectionString);
        builder.Services.Configure<KeyManagementOptions>(o => o.XmlRepository = new PostgresXmlRepository(dataSource));
        return builder;
    }
}
