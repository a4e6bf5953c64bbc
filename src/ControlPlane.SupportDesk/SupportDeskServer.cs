using System.Reflection;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using ModelContextProtocol;
using ModelContextProtocol.Server;

namespace ControlPlane.SupportDesk;

/// <summary>Factory and DI entry points for the in-process support-desk tool server.</summary>
public static class SupportDeskServer
{
    public const string ServerId = "support-desk";

    /// <summary>
    /// Creates the support-desk tools bound to <paramref name="database"/>, ready for the host's own catalog
    /// (in a fixed order: lookup_customer_by_email, list_orders, create_refund).
    /// </summary>
    public static IReadOnlyList<McpServerTool> CreateTools(SupportDeskDatabase database, JsonSerializerOptions? serializerOptions = null)
    {
        ArgumentNullException.ThrowIfNull(database);

        var target = new SupportDeskTools(database);
        var options = serializerOptions ?? McpJsonUtilities.DefaultOptions;

        // Explicit list rather than a reflection scan so the order is stable and renames break the build.
        string[] methods =
        [
            nameof(SupportDeskTools.LookupCustomerByEmailAsync),
            nameof(SupportDeskTools.ListOrdersAsync),
            nameof(SupportDeskTools.CreateRefundAsync),
        ];

        // The [McpServerTool] attribute on each method supplies name, annotations and structured-output settings.
        return methods
            .Select(name => McpServerTool.Create(
                typeof(SupportDeskTools).GetMethod(name, BindingFlags.Public | BindingFlags.Instance)!,
                target,
                new McpServerToolCreateOptions { SerializerOptions = options }))
            .ToArray();
    }

    /// <summary>Registers a singleton <see cref="SupportDeskDatabase"/> over <paramref name="databasePath"/>.</summary>
    public static IServiceCollection AddSupportDesk(this IServiceCollection services, string databasePath)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(databasePath);

        services.TryAddSingleton(new SupportDeskOptions { DatabasePath = databasePath });
        services.TryAddSingleton(static sp => new SupportDeskDatabase(
            sp.GetRequiredService<SupportDeskOptions>(),
            sp.GetService<TimeProvider>()));
        return services;
    }
}
