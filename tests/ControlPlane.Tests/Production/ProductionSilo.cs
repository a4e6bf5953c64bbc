using System.Diagnostics;
using ControlPlane.Tests.Infrastructure;

namespace ControlPlane.Tests.Production;

/// <summary>
/// One silo of a production-profile cluster as a real <c>dotnet ControlPlane.Host.dll</c> process. Its ports are
/// fixed for its life, so a restarted silo comes back at the same URL, as a pod behind a stable address would.
/// </summary>
public sealed class ProductionSilo : IAsyncDisposable
{
    private readonly IReadOnlyDictionary<string, string> _environment;
    private readonly string _dataDir;
    private readonly int _siloPort = FreePorts.Next();
    private readonly int _gatewayPort = FreePorts.Next();
    private readonly Queue<string> _recentOutput = new();
    private Process? _process;

    public ProductionSilo(int index, string dataDir, IReadOnlyDictionary<string, string> environment)
    {
        Index = index;
        _dataDir = dataDir;
        _environment = environment;
        BaseUrl = new Uri($"http://127.0.0.1:{FreePorts.Next()}");
    }

    public int Index { get; }

    /// <summary>The Orleans gateway port the silo would open if the gateway were enabled.</summary>
    public int GatewayPort => _gatewayPort;

    /// <summary>The port the silo talks to other silos on: how the cluster's own views name it.</summary>
    public int SiloPort => _siloPort;

    /// <summary>Whether an Orleans silo address (<c>S127.0.0.1:port:generation</c>) is this silo's.</summary>
    public bool Is(string siloAddress) => siloAddress.Contains($":{_siloPort}:", StringComparison.Ordinal) || siloAddress.EndsWith($":{_siloPort}", StringComparison.Ordinal);

    public Uri BaseUrl { get; }

    /// <summary>The silo's own data directory (its support-desk database lives here).</summary>
    public string DataDir => _dataDir;

    public bool IsRunning => _process is { HasExited: false };

    /// <summary>Starts the process and waits for /readyz (joined, guard state loaded, bootstrap done).</summary>
    public async Task StartAsync(TimeSpan timeout)
    {
        if (IsRunning) throw new InvalidOperationException($"Silo {Index} is already running.");
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "ControlPlane.Host.dll")])
        {
            WorkingDirectory = AppContext.BaseDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (key, value) in _environment) start.Environment[key] = value;
        start.Environment["ASPNETCORE_URLS"] = BaseUrl.ToString().TrimEnd('/');
        start.Environment["ControlPlane__DataDir"] = _dataDir;
        start.Environment["ControlPlane__SiloPort"] = _siloPort.ToString();
        start.Environment["ControlPlane__GatewayPort"] = _gatewayPort.ToString();
        start.Environment["ControlPlane__AdvertisedIPAddress"] = "127.0.0.1";

        var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start a silo process.");
        process.OutputDataReceived += (_, e) => Remember(e.Data);
        process.ErrorDataReceived += (_, e) => Remember(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        using var http = new HttpClient { BaseAddress = BaseUrl, Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (process.HasExited) throw new InvalidOperationException($"Silo {Index} exited with {process.ExitCode} before it was ready:\n{RecentOutput()}");
            try
            {
                if ((await http.GetAsync("/readyz")).IsSuccessStatusCode) return;
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
            }

            if (DateTime.UtcNow > deadline)
            {
                Kill();
                throw new TimeoutException($"Silo {Index} was not ready within {timeout.TotalSeconds:F0} s:\n{RecentOutput()}");
            }

            await Task.Delay(250);
        }
    }

    /// <summary>SIGKILL: no shutdown, no goodbye to the cluster; the others must find out on their own.</summary>
    public void Kill()
    {
        if (_process is not { HasExited: false } process) return;
        process.Kill(entireProcessTree: true);
        process.WaitForExit(10_000);
    }

    /// <summary>SIGTERM, as an orchestrator stops a pod: the host drains and the silo leaves the cluster gracefully.</summary>
    public async Task StopAsync(TimeSpan timeout)
    {
        if (_process is not { HasExited: false } process) return;
        using (var signal = Process.Start("kill", ["-TERM", process.Id.ToString()]))
        {
            await signal!.WaitForExitAsync();
        }

        using var wait = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(wait.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"Silo {Index} did not stop within {timeout.TotalSeconds:F0} s of SIGTERM:\n{RecentOutput()}");
        }
    }

    public string RecentOutput()
    {
        lock (_recentOutput) return string.Join('\n', _recentOutput);
    }

    private void Remember(string? line)
    {
        if (line is null) return;
        lock (_recentOutput)
        {
            _recentOutput.Enqueue(line);
            while (_recentOutput.Count > 200) _recentOutput.Dequeue();
        }
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        _process?.Dispose();
        return ValueTask.CompletedTask;
    }
}
