using Orleans;
using Orleans.Runtime;

namespace ControlPlane.Grains.Storage;

/// <summary>Options of one <c>AddSqliteGrainStorage</c> provider.</summary>
public sealed class SqliteGrainStorageOptions
{
    /// <summary>
    /// Path of the SQLite database file. Relative paths resolve against the process working directory;
    /// a missing directory is created at start. Several providers may share one file: rows are keyed by provider name.
    /// </summary>
    public string DatabasePath { get; set; } = "";
}

/// <summary>Fails silo start early instead of on the first grain activation that touches state.</summary>
internal sealed class SqliteGrainStorageOptionsValidator(SqliteGrainStorageOptions options, string name) : IConfigurationValidator
{
    public void ValidateConfiguration() => Validate(options, name);

    internal static void Validate(SqliteGrainStorageOptions options, string name)
    {
        ArgumentNullException.ThrowIfNull(options);

        if (string.IsNullOrWhiteSpace(options.DatabasePath))
        {
            throw new OrleansConfigurationException(
                $"{nameof(SqliteGrainStorageOptions)}.{nameof(SqliteGrainStorageOptions.DatabasePath)} is required for grain storage provider '{name}'.");
        }

        // Pooled connections to ":memory:" each see their own empty database, so state would silently vanish.
        if (options.DatabasePath.Trim().Equals(":memory:", StringComparison.OrdinalIgnoreCase))
        {
            throw new OrleansConfigurationException(
                $"{nameof(SqliteGrainStorageOptions)}.{nameof(SqliteGrainStorageOptions.DatabasePath)} of grain storage provider '{name}' must be a file path, not ':memory:'.");
        }
    }
}
