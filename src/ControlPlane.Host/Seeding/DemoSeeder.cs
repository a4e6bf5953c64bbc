using System.Security.Cryptography;
using System.Text.Json;
using ControlPlane.Guard.Authentication;
using ControlPlane.Guard.State;
using ControlPlane.Host.Hosting;
using ControlPlane.Host.Operations;
using ControlPlane.Host.Security;
using ControlPlane.Operators;
using ControlPlane.SupportDesk;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace ControlPlane.Host.Seeding;

/// <summary>
/// On the embedded default's first start: a demo tenant, agent, user, an admin operator and an agent
/// token, written to a 0600 credentials file and printed as ready-to-paste client configuration.
/// Later starts reuse what is there and never seed over it.
/// </summary>
internal sealed partial class DemoSeeder(
    IOptions<ControlPlaneOptions> options,
    IHostApplicationLifetime lifetime,
    IServer server,
    GuardStateCache guardState,
    IGrainFactory grains,
    TenantService tenants,
    TokenService tokens,
    TimeProvider time,
    ILogger<DemoSeeder> logger) : BackgroundService
{
    public const string TenantId = "demo";
    public const string AgentId = "demo-agent";
    public const string UserId = "demo-user";
    public const string AdminId = "admin";

    private static readonly JsonSerializerOptions FileJson = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>Completes when seeding (or the decision not to) is done; readiness waits for it.</summary>
    public Task Completion => _completion.Task;

    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            var settings = options.Value;
            if (!settings.IsEmbedded || !settings.SeedDemo) return;

            await WhenStartedAsync(stoppingToken);
            while (!guardState.IsLoaded) await Task.Delay(100, stoppingToken);

            var path = Path.Combine(settings.FullDataDir, DemoCredentials.FileName);
            var credentials = await LoadAsync(path, stoppingToken);
            if (credentials is null && settings.PrimarySiloPort is null)
            {
                credentials = await SeedAsync(path, stoppingToken);
            }

            if (credentials is not null) Print(credentials, BaseUrl(), path);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            LogSeedFailed(logger, ex);
        }
        finally
        {
            _completion.TrySetResult();
        }
    }

    private async Task<DemoCredentials?> SeedAsync(string path, CancellationToken cancellationToken)
    {
        var directory = grains.GetGrain<IOperatorDirectoryGrain>(IOperatorDirectoryGrain.Singleton);
        if (await directory.CountAsync() > 0)
        {
            LogStateWithoutCredentials(logger, path);
            return null;
        }

        var now = time.GetUtcNow();
        var (_, operatorKey, keyHash) = SecretTokens.Create(SecretTokens.OperatorPrefix, AdminId);
        var consolePassword = Convert.ToBase64String(RandomNumberGenerator.GetBytes(18)).Replace('+', 'x').Replace('/', 'y');
        var admin = new OperatorAccount(AdminId, [.. OperatorRoles.All], [], keyHash, now, PasswordHasher.Hash(consolePassword));
        await directory.UpsertAsync(admin);

        await tenants.CreateAsync(admin, TenantId, "Demo tenant");
        var minted = await tokens.MintAsync(admin, TenantId, AgentId, UserId,
            [$"server:{SupportDeskServer.ServerId}:read", $"server:{SupportDeskServer.ServerId}:write"],
            (long)TokenService.MaxLifetime.TotalSeconds);

        var baseUrl = BaseUrl();
        var credentials = new DemoCredentials(baseUrl + "/mcp", minted.Bearer, operatorKey, TenantId, AgentId, UserId, baseUrl + "/console", AdminId, consolePassword);
        await WriteSecretFileAsync(path, JsonSerializer.Serialize(credentials, FileJson), cancellationToken);
        LogSeeded(logger, path);
        return credentials;
    }

    private static async Task<DemoCredentials?> LoadAsync(string path, CancellationToken cancellationToken)
    {
        if (!File.Exists(path)) return null;
        await using var stream = File.OpenRead(path);
        return await JsonSerializer.DeserializeAsync<DemoCredentials>(stream, FileJson, cancellationToken);
    }

    /// <summary>Writes owner-only from the first byte, then renames into place, so the secret is never world-readable or half-written.</summary>
    private static async Task WriteSecretFileAsync(string path, string content, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + ".tmp";
        var fileOptions = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

        await using (var stream = new FileStream(temp, fileOptions))
        await using (var writer = new StreamWriter(stream))
        {
            await writer.WriteAsync(content.AsMemory(), cancellationToken);
            await writer.FlushAsync(cancellationToken);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
    }

    private async Task WhenStartedAsync(CancellationToken cancellationToken)
    {
        var started = new TaskCompletionSource();
        using var _ = lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        await started.Task.WaitAsync(cancellationToken);
    }

    private string BaseUrl()
    {
        var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? "http://127.0.0.1:5080";
        return address.Replace("://0.0.0.0", "://127.0.0.1").Replace("://[::]", "://127.0.0.1").Replace("://+", "://127.0.0.1").TrimEnd('/');
    }

    private static void Print(DemoCredentials c, string baseUrl, string path)
    {
        var mcpUrl = baseUrl + "/mcp";
        var header = new Dictionary<string, string> { ["Authorization"] = "Bearer " + c.AgentToken };
        var claude = new { mcpServers = new Dictionary<string, object> { ["controlplane"] = new { type = "http", url = mcpUrl, headers = header } } };
        var vscode = new { servers = new Dictionary<string, object> { ["controlplane"] = new { type = "http", url = mcpUrl, headers = header } } };
        var json = new JsonSerializerOptions { WriteIndented = true };

        // Deliberately on stdout, not the log: this is the demo's hand-over to a person at a terminal.
        Console.Out.WriteLine($"""

            ControlPlane is running (embedded default). Demo credentials: {path}

            Claude Code (.mcp.json or `claude mcp add-json controlplane '<the inner object>'`):
            {JsonSerializer.Serialize(claude, json)}

            VS Code (.vscode/mcp.json):
            {JsonSerializer.Serialize(vscode, json)}

            Operator API: {baseUrl}/api/v1  (Authorization: Bearer <operatorKey from the credentials file>)
            Console:      {baseUrl}/console  (user "{c.ConsoleUser}", consolePassword from the credentials file)

            """);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Seeded the demo tenant, agent and operator; credentials written to {Path}.")]
    private static partial void LogSeeded(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "State exists but {Path} does not; demo secrets are stored only as hashes and cannot be recreated. Mint a new token through the API, or start with an empty data directory.")]
    private static partial void LogStateWithoutCredentials(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Error, Message = "Seeding the demo credentials failed.")]
    private static partial void LogSeedFailed(ILogger logger, Exception ex);
}
