using ControlPlane.Host.OperatorConsole;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Host.Hosting;

/// <summary>
/// Builds the control plane as Program.cs does, with settings and services layered on top: for running it
/// in-process from tests and benchmarks.
/// </summary>
public static class ControlPlaneApplication
{
    public static WebApplication Build(
        IDictionary<string, string?> settings,
        Action<IServiceCollection>? configureServices = null,
        bool quiet = true,
        Action<IServiceCollection>? decorateServices = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            EnvironmentName = "Production",
            ContentRootPath = AppContext.BaseDirectory,
            // The host's name, not the test runner's: static web assets (the console's scripts and styles) are found by it.
            ApplicationName = typeof(ControlPlaneApplication).Assembly.GetName().Name,
        });
        if (quiet) builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(settings);
        configureServices?.Invoke(builder.Services);
        builder.AddControlPlane();
        builder.AddControlPlaneConsole();
        // After the host's own registrations: for wrapping one of them (a test's faulty store, say).
        decorateServices?.Invoke(builder.Services);

        var app = builder.Build();
        app.MapControlPlane();
        app.MapControlPlaneConsole();
        return app;
    }
}
