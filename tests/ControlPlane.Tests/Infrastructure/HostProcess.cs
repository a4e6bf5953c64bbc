using System.Diagnostics;
using System.Text.Json;
using ControlPlane.Host.Seeding;

namespace ControlPlane.Tests.Infrastructure;

/// <summary>
/// The control plane as a real separate process (<c>dotnet ControlPlane.Host.dll</c>), for what only a
/// real process can show: SIGKILL in the middle of work.
/// </summary>
public sealed class HostProcess : IAsyncDisposable
{
    private readonly Process _process;

    private HostProcess(Process process, Uri baseUrl, DemoCredentials credentials)
    {
        _process = process;
        BaseUrl = baseUrl;
        Credentials = credentials;
    }

    public Uri BaseUrl { get; }

    public DemoCredentials Credentials { get; }

    public bool HasExited => _process.HasExited;

    public static async Task<HostProcess> StartAsync(string dataDir, IReadOnlyDictionary<string, string>? environment = null)
    {
        var httpPort = FreePorts.Next();
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "ControlPlane.Host.dll")])
        {
            WorkingDirectory = AppContext.BaseDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{httpPort}";
        start.Environment["ControlPlane__DataDir"] = dataDir;
        start.Environment["ControlPlane__SiloPort"] = FreePorts.Next().ToString();
        start.Environment["ControlPlane__GatewayPort"] = FreePorts.Next().ToString();
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) start.Environment[key] = value;

        var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start the host process.");
        process.OutputDataReceived += static (_, _) => { };
        process.ErrorDataReceived += static (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var baseUrl = new Uri($"http://127.0.0.1:{httpPort}");
        using var http = new HttpClient { BaseAddress = baseUrl, Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            if (process.HasExited) throw new InvalidOperationException($"The host process exited with {process.ExitCode} before it was ready.");
            try
            {
                if ((await http.GetAsync("/readyz")).IsSuccessStatusCode) break;
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            if (DateTime.UtcNow > deadline)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException("The host process was not ready within 90 s.");
            }

            await Task.Delay(200);
        }

        await using var file = File.OpenRead(Path.Combine(dataDir, DemoCredentials.FileName));
        var credentials = (await JsonSerializer.DeserializeAsync<DemoCredentials>(file, new JsonSerializerOptions(JsonSerializerDefaults.Web)))!;
        return new HostProcess(process, baseUrl, credentials);
    }

    /// <summary>SIGKILL: no shutdown hooks, no flushing, nothing graceful.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit(10_000);
    }

    public ValueTask DisposeAsync()
    {
        if (!_process.HasExited) Kill();
        _process.Dispose();
        return ValueTask.CompletedTask;
    }
}
