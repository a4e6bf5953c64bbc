using System.Diagnostics;
using System.Text;
using System.Text.Json;
using ControlPlane.Tests.Operations;

namespace ControlPlane.Tests.Clients;

/// <summary>
/// The official TypeScript MCP client (tests/clients/typescript/mcp-client.mjs) in a node child process, one session
/// per instance. Each call writes one step to its stdin and reads its one answer line, so a test can act between steps
/// (revoke the token, approve what a refusal asked for). Unlike the C# client it validates structuredContent against
/// the outputSchema it was given by tools/list, which is why the tests run it.
/// </summary>
internal sealed class TypeScriptMcpClient : IAsyncDisposable
{
    public static string Directory => RepoFiles.PathOf("tests", "clients", "typescript");

    private static string InstalledSdk => Path.Combine(Directory, "node_modules", "@modelcontextprotocol", "sdk", "package.json");

    // Above the client's own request timeout for nothing these tests do, below the point where a hang goes unnoticed.
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(30);

    private readonly Process _node;
    private readonly StringBuilder _stderr = new();

    private TypeScriptMcpClient(Process node)
    {
        _node = node;
        _node.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_stderr) _stderr.AppendLine(e.Data);
        };
        _node.BeginErrorReadLine();
    }

    /// <summary>The tools the client listed when it connected, with the output schemas it validates against.</summary>
    public JsonElement Tools { get; private set; }

    /// <summary>Starts node, connects to <paramref name="mcpUrl"/> with the bearer token and lists the tools.</summary>
    public static async Task<TypeScriptMcpClient> ConnectAsync(Uri mcpUrl, string token)
    {
        // A failure, never a skip: a missing install must not turn the only test of the client users run into a pass.
        Assert.True(File.Exists(InstalledSdk), $"The TypeScript MCP SDK is not installed: run `npm ci` in {Directory} (as .ci/run does).");

        var node = Process.Start(new ProcessStartInfo("node", ["mcp-client.mjs"])
        {
            WorkingDirectory = Directory,
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            // No byte order mark: the script parses each line as JSON.
            StandardInputEncoding = new UTF8Encoding(false),
            StandardOutputEncoding = Encoding.UTF8,
        }) ?? throw new InvalidOperationException("node did not start.");

        var client = new TypeScriptMcpClient(node);
        try
        {
            client.Tools = (await client.StepAsync(new { op = "connect", url = mcpUrl.ToString(), token }, "connect and listTools()")).GetProperty("tools");
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>Whether the client holds an outputSchema for <paramref name="tool"/>, i.e. will validate its structuredContent.</summary>
    public bool ValidatesOutputOf(string tool) =>
        Tools.EnumerateArray().Any(t => t.GetProperty("name").GetString() == tool && t.TryGetProperty("outputSchema", out _));

    /// <summary>
    /// The client's ordinary <c>callTool</c>, validation on; returns its CallToolResult, and fails the test with the
    /// client's error if callTool threw (what a user's agent would see instead of the result).
    /// </summary>
    public Task<JsonElement> CallToolAsync(string name, IReadOnlyDictionary<string, object?>? arguments = null) =>
        StepAsync(new { op = "callTool", name, arguments }, $"callTool('{name}')");

    /// <summary>The client's resources/read: its answer line, <c>{"ok":true,"result"}</c> or <c>{"ok":false,"error":{..., "data"}}</c>.</summary>
    public Task<JsonElement> ReadResourceAsync(string uri) => AnswerAsync(new { op = "readResource", uri }, $"readResource('{uri}')");

    /// <summary>The client's prompts/get: its answer line, as <see cref="ReadResourceAsync"/>.</summary>
    public Task<JsonElement> GetPromptAsync(string name) => AnswerAsync(new { op = "getPrompt", name }, $"getPrompt('{name}')");

    private async Task<JsonElement> StepAsync(object step, string what)
    {
        var answer = await AnswerAsync(step, what);
        if (answer.GetProperty("ok").GetBoolean()) return answer.GetProperty("result");

        var error = answer.GetProperty("error");
        Assert.Fail($"The TypeScript client's {what} threw {error.GetProperty("name").GetString()} {error.GetProperty("code")}: " +
            $"{error.GetProperty("message").GetString()}{Stderr()}");
        return default;
    }

    private async Task<JsonElement> AnswerAsync(object step, string what)
    {
        await _node.StandardInput.WriteLineAsync(JsonSerializer.Serialize(step));
        await _node.StandardInput.FlushAsync();

        string? line;
        using (var timeout = new CancellationTokenSource(StepTimeout))
        {
            try
            {
                line = await _node.StandardOutput.ReadLineAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                line = null;
                Assert.Fail($"The TypeScript client did not answer {what} within {StepTimeout.TotalSeconds:0} s.{Stderr()}");
            }
        }

        if (line is null) Assert.Fail($"The TypeScript client exited during {what}.{Stderr()}");
        return JsonDocument.Parse(line).RootElement.Clone();
    }

    private string Stderr()
    {
        lock (_stderr) return _stderr.Length == 0 ? "" : "\nnode stderr:\n" + _stderr;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            // End of stdin closes the client's session and ends the script.
            _node.StandardInput.Close();
            using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _node.WaitForExitAsync(exit.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            if (!_node.HasExited) _node.Kill(entireProcessTree: true);
        }
        finally
        {
            _node.Dispose();
        }
    }
}
