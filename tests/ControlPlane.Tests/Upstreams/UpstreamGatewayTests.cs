using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.Upstreams;

/// <summary>
/// Real third-party MCP servers from npm (filesystem, everything, memory) and a misbehaving one of ours, put
/// behind the guard through the REST API and driven by the SDK's MCP client over real HTTP.
/// </summary>
[Collection(UpstreamHostCollection.Name)]
public sealed class UpstreamGatewayTests(UpstreamHostFixture fixture)
{
    private ControlPlaneTestHost Host => fixture.Host;

    [UpstreamFact]
    public async Task Credentials_are_stored_encrypted_passed_to_the_upstream_and_never_returned()
    {
        const string secret = "lab-token-d41d8cd98f00b204";
        var registered = await Host.RegisterUpstreamAsync(new { id = "lab-secret", transport = "stdio", command = "node", args = new[] { UpstreamPackages.Lab }, env = new Dictionary<string, string> { ["LAB_TOKEN"] = secret }, trustAnnotations = true });
        Assert.DoesNotContain(secret, registered.GetRawText(), StringComparison.Ordinal);
        Assert.Equal(["LAB_TOKEN"], registered.GetProperty("envNames").EnumerateArray().Select(e => e.GetString()));
        await Host.WaitForUpstreamAsync("lab-secret");

        // The upstream got the credential: it reports its length, never the value.
        var (token, _) = await Host.MintAsync("demo", "secret-agent", scopes: ["server:lab-secret:read"]);
        await using var client = await Host.ConnectAsync(token);
        var result = await client.CallToolAsync("lab-secret__token_length");
        RefusalAssert.Succeeded(result);
        Assert.Equal(secret.Length.ToString(), RefusalAssert.Text(result));

        using var http = Host.OperatorHttp();
        var listed = await http.GetStringAsync("/api/v1/servers");
        Assert.Contains("\"lab-secret\"", listed, StringComparison.Ordinal);
        Assert.Contains("LAB_TOKEN", listed, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, listed, StringComparison.Ordinal);

        // At rest, in the grain store and anywhere else under the data directory, only ciphertext.
        foreach (var file in Directory.EnumerateFiles(Host.DataDir, "*", SearchOption.AllDirectories))
        {
            await using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream, System.Text.Encoding.Latin1);
            Assert.DoesNotContain(secret, await reader.ReadToEndAsync(), StringComparison.Ordinal);
        }

        // Nor in the audit of the call.
        var audit = await http.GetStringAsync("/api/v1/audit?tenantId=demo&tool=token_length");
        Assert.Contains("lab-secret", audit, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, audit, StringComparison.Ordinal);

        await Host.RemoveUpstreamAsync("lab-secret");
        Assert.DoesNotContain("lab-secret__token_length", (await client.ListToolsAsync()).Select(t => t.Name));
    }

    [UpstreamFact]
    public async Task Bad_registrations_get_problem_details_and_only_admins_register()
    {
        using var http = Host.OperatorHttp();
        var bad = await http.PostAsJsonAsync("/api/v1/servers", new { id = "Bad Id", transport = "ftp" });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("application/problem+json", bad.Content.Headers.ContentType?.MediaType);
        var errors = JsonDocument.Parse(await bad.Content.ReadAsStringAsync()).RootElement.GetProperty("errors");
        Assert.True(errors.TryGetProperty("id", out _));
        Assert.True(errors.TryGetProperty("transport", out _));

        var noUrl = await http.PostAsJsonAsync("/api/v1/servers", new { id = "web", transport = "http", url = "ftp://x" });
        Assert.Equal(HttpStatusCode.BadRequest, noUrl.StatusCode);

        var builtIn = await http.PostAsJsonAsync("/api/v1/servers", new { id = "support-desk", transport = "stdio", command = "node" });
        Assert.Equal(HttpStatusCode.Conflict, builtIn.StatusCode);

        var unknownTenant = await http.PostAsJsonAsync("/api/v1/servers", new { id = "lab-x", tenantId = "no-such-tenant", transport = "stdio", command = "node" });
        Assert.Equal(HttpStatusCode.NotFound, unknownTenant.StatusCode);

        Assert.Equal(HttpStatusCode.NotFound, (await http.DeleteAsync("/api/v1/servers/never-registered")).StatusCode);
        using var anonymous = Host.Http();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v1/servers")).StatusCode);
    }

    [UpstreamFact]
    public async Task Filesystem_reads_pass_writes_are_read_only_first_then_need_confirmation()
    {
        var root = Directory.CreateTempSubdirectory("cp-fs-").FullName;
        await File.WriteAllTextAsync(Path.Combine(root, "notes.txt"), "hello from the filesystem server");
        await Host.EnsureTenantAsync("fs-tenant");
        await Host.RegisterNodeAsync("fs", UpstreamPackages.Filesystem, [root], tenantId: "fs-tenant");

        var (token, _) = await Host.MintAsync("fs-tenant", "fs-agent", scopes: ["server:fs:read", "server:fs:write"]);
        await using var client = await Host.ConnectAsync(token);

        // The server's annotations are not trusted: every tool is an action, none listed on a read-only server, until an
        // operator classifies the reads (for this tenant).
        Assert.DoesNotContain("fs__read_file", (await client.ListToolsAsync()).Select(t => t.Name));
        RefusalAssert.Refused(await client.CallToolAsync("fs__read_file", new Dictionary<string, object?> { ["path"] = Path.Combine(root, "notes.txt") }), RefusalCodes.ReadOnly);
        using (var http = Host.OperatorHttp())
        {
            foreach (var tool in new[] { "read_file", "list_directory" })
            {
                var classified = await http.PutAsJsonAsync($"/api/v1/servers/fs/tools/{tool}", new { classification = "read", reason = "reviewed: reads only", tenantId = "fs-tenant" });
                Assert.True(classified.IsSuccessStatusCode, await classified.Content.ReadAsStringAsync());
            }
        }

        await Eventually.TrueAsync(async () => (await client.ListToolsAsync()).Any(t => t.Name == "fs__list_directory"), TimeSpan.FromSeconds(60), "the classified reads to be listed");
        var names = (await client.ListToolsAsync()).Select(t => t.Name).ToHashSet();
        Assert.Contains("fs__read_file", names);
        Assert.Contains("fs__list_directory", names);
        Assert.DoesNotContain("fs__write_file", names);
        Assert.DoesNotContain("fs__edit_file", names);
        Assert.DoesNotContain("fs__move_file", names);

        var read = await client.CallToolAsync("fs__read_file", new Dictionary<string, object?> { ["path"] = Path.Combine(root, "notes.txt") });
        RefusalAssert.Succeeded(read);
        Assert.Contains("hello from the filesystem server", RefusalAssert.Text(read), StringComparison.Ordinal);
        var listing = await client.CallToolAsync("fs__list_directory", new Dictionary<string, object?> { ["path"] = root });
        Assert.Contains("notes.txt", RefusalAssert.Text(listing), StringComparison.Ordinal);

        var target = Path.Combine(root, "written.txt");
        var write = new Dictionary<string, object?> { ["path"] = target, ["content"] = "written through the gateway" };
        RefusalAssert.Refused(await client.CallToolAsync("fs__write_file", write), RefusalCodes.ReadOnly);
        RefusalAssert.Refused(await client.CallToolAsync("fs__move_file", new Dictionary<string, object?> { ["source"] = target, ["destination"] = target + ".2" }), RefusalCodes.ReadOnly);
        Assert.False(File.Exists(target));

        // The same server on its own endpoint, under its own names; the read the operator classified is listed there too.
        await using (var own = await Host.ConnectAsync(token, "/mcp/fs"))
        {
            Assert.Contains("read_file", (await own.ListToolsAsync()).Select(t => t.Name));
        }

        // Another tenant does not see this tenant's upstream at all.
        var (other, _) = await Host.MintAsync("demo", "fs-outsider", scopes: ["server:fs:read"]);
        await using (var outsider = await Host.ConnectAsync(other))
        {
            Assert.DoesNotContain((await outsider.ListToolsAsync()).Select(t => t.Name), n => n.StartsWith("fs__", StringComparison.Ordinal));
            await Assert.ThrowsAnyAsync<ModelContextProtocol.McpException>(() => outsider.CallToolAsync("fs__read_file", new Dictionary<string, object?> { ["path"] = target }).AsTask());
        }

        await Host.SetModeAsync("fs-tenant", "fs", "read-write");
        Assert.Contains("fs__write_file", (await client.ListToolsAsync()).Select(t => t.Name));
        var written = await Host.CallConfirmedAsync(client, "fs__write_file", write);
        RefusalAssert.Succeeded(written);
        Assert.Equal("written through the gateway", await File.ReadAllTextAsync(target));
    }

    [UpstreamFact]
    public async Task A_path_outside_the_root_gets_the_upstreams_own_error_and_is_audited()
    {
        var root = Directory.CreateTempSubdirectory("cp-fs-").FullName;
        await Host.EnsureTenantAsync("fs-jail");
        await Host.RegisterNodeAsync("fs-jail", UpstreamPackages.Filesystem, [root], tenantId: "fs-jail", trustAnnotations: true);
        var (token, _) = await Host.MintAsync("fs-jail", "fs-agent", scopes: ["server:fs-jail:read"]);
        await using var client = await Host.ConnectAsync(token);

        var escape = await client.CallToolAsync("fs-jail__read_file", new Dictionary<string, object?> { ["path"] = "/etc/passwd" });
        Assert.True(escape.IsError);
        Assert.Contains("Access denied", RefusalAssert.Text(escape), StringComparison.Ordinal);
        Assert.DoesNotContain("root:", RefusalAssert.Text(escape), StringComparison.Ordinal);

        using var http = Host.OperatorHttp();
        var audit = JsonDocument.Parse(await http.GetStringAsync("/api/v1/audit?tenantId=fs-jail&tool=read_file")).RootElement.GetProperty("items");
        var entry = Assert.Single(audit.EnumerateArray());
        Assert.Equal("fs-jail", entry.GetProperty("server").GetString());
        Assert.Equal("allowed", entry.GetProperty("decision").GetString());
        Assert.Equal("error", entry.GetProperty("outcome").GetString());
    }

    [UpstreamFact]
    public async Task Everything_server_images_structured_content_and_progress_arrive_intact()
    {
        await Host.RegisterNodeAsync("everything", UpstreamPackages.Everything, ["stdio"], trustAnnotations: true);
        var (token, _) = await Host.MintAsync("demo", "everything-agent", scopes: ["server:everything:read"]);
        await using var client = await Host.ConnectAsync(token);

        var image = await client.CallToolAsync("everything__get-tiny-image");
        RefusalAssert.Succeeded(image);
        var block = Assert.Single(image.Content.OfType<ImageContentBlock>());
        Assert.Equal("image/png", block.MimeType);
        Assert.StartsWith("iVBORw0KGgo", Convert.ToBase64String(block.DecodedData.ToArray()), StringComparison.Ordinal);

        var weather = await client.CallToolAsync("everything__get-structured-content", new Dictionary<string, object?> { ["location"] = "Chicago" });
        RefusalAssert.Succeeded(weather);
        Assert.Equal(36, weather.StructuredContent!.Value.GetProperty("temperature").GetInt32());
        Assert.Equal("Light rain / drizzle", weather.StructuredContent!.Value.GetProperty("conditions").GetString());

        var updates = new List<ProgressNotificationValue>();
        var progress = new SynchronousProgress(value => { lock (updates) updates.Add(value); });
        var done = await client.CallToolAsync("everything__trigger-long-running-operation",
            new Dictionary<string, object?> { ["duration"] = 2, ["steps"] = 4 }, progress);
        RefusalAssert.Succeeded(done);
        Assert.Contains("Long running operation completed", RefusalAssert.Text(done), StringComparison.Ordinal);
        lock (updates)
        {
            // The SDK client handles each notification on its own task, so its callback may see them in any order,
            // and on a starved thread pool a notification can lose the race with the result and never reach the
            // callback: the callback only proves that progress arrives intact. Count and order are asserted on the wire.
            Assert.NotEmpty(updates);
            Assert.Equal(updates.Count, updates.Select(u => u.Progress).Distinct().Count());
            Assert.All(updates, u => Assert.InRange(u.Progress, 1f, 4f));
            Assert.All(updates, u => Assert.Equal(4f, u.Total));
        }

        // On the wire: every notification the upstream sent before its result, in its order, before the result (the
        // gateway reads them off the transport in arrival order; see ProgressTap).
        using (var http = Host.Http(token))
        {
            var session = await RawMcpSession.OpenAsync(http, "progress-order");
            var messages = await RawMcpSession.ExchangeAsync(http, session,
                """{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"everything__trigger-long-running-operation","arguments":{"duration":2,"steps":4},"_meta":{"progressToken":"wire"}}}""");
            var wire = messages.Where(m => m.TryGetProperty("method", out var method) && method.GetString() == "notifications/progress")
                .Select(m => m.GetProperty("params")).ToList();
            Assert.All(wire, p => Assert.Equal("wire", p.GetProperty("progressToken").GetString()));
            // All four, unless forwarding them outlasted the 1 s a result waits for a slow caller; then a prefix, never
            // a gap or a step backwards.
            var values = wire.Select(p => p.GetProperty("progress").GetDouble()).ToList();
            Assert.InRange(values.Count, 3, 4);
            Assert.Equal(Enumerable.Range(1, values.Count).Select(i => (double)i), values);
            Assert.False(messages[^1].GetProperty("result").TryGetProperty("isError", out var isError) && isError.GetBoolean());
        }

        // Schema validation applies to upstream tools too: an unknown city never reaches the server.
        RefusalAssert.Refused(await client.CallToolAsync("everything__get-structured-content", new Dictionary<string, object?> { ["location"] = "Paris" }), RefusalCodes.InvalidArguments);
    }

    [UpstreamFact]
    public async Task Everything_server_over_streamable_http_is_served_the_same_way()
    {
        var port = FreePorts.Next();
        using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("node", [UpstreamPackages.Everything, "streamableHttp"])
        {
            Environment = { ["PORT"] = port.ToString() },
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        try
        {
            await Host.RegisterUpstreamAsync(new { id = "everything-http", transport = "http", url = $"http://127.0.0.1:{port}/mcp", headers = new Dictionary<string, string> { ["X-Upstream-Key"] = "http-secret-value" }, trustAnnotations = true });
            await Host.WaitForUpstreamAsync("everything-http");

            var (token, _) = await Host.MintAsync("demo", "http-agent", scopes: ["server:everything-http:read"]);
            await using var client = await Host.ConnectAsync(token);
            var echo = await client.CallToolAsync("everything-http__echo", new Dictionary<string, object?> { ["message"] = "over http" });
            RefusalAssert.Succeeded(echo);
            Assert.Contains("over http", RefusalAssert.Text(echo), StringComparison.Ordinal);
            var image = await client.CallToolAsync("everything-http__get-tiny-image");
            Assert.Equal("image/png", Assert.Single(image.Content.OfType<ImageContentBlock>()).MimeType);

            using var http = Host.OperatorHttp();
            var listed = await http.GetStringAsync("/api/v1/servers");
            Assert.Contains("X-Upstream-Key", listed, StringComparison.Ordinal);
            Assert.DoesNotContain("http-secret-value", listed, StringComparison.Ordinal);
        }
        finally
        {
            await Host.RemoveUpstreamAsync("everything-http");
            process.Kill(entireProcessTree: true);
        }
    }

    [UpstreamFact]
    public async Task Killing_the_tenant_mid_call_returns_KILLED_and_the_upstream_sees_the_cancellation()
    {
        var cancelLog = Path.Combine(Host.DataDir, "lab-cancelled.log");
        var callLog = Path.Combine(Host.DataDir, "lab-calls.log");
        await Host.EnsureTenantAsync("kill-tenant");
        await Host.RegisterNodeAsync("lab-wait", UpstreamPackages.Lab, env: new() { ["LAB_CANCEL_LOG"] = cancelLog, ["LAB_CALL_LOG"] = callLog }, tenantId: "kill-tenant", trustAnnotations: true);
        var (token, _) = await Host.MintAsync("kill-tenant", "waiter", scopes: ["server:lab-wait:read"]);
        await using var client = await Host.ConnectAsync(token);

        // Killed only once the upstream has the call: killed earlier, the guard refuses it before it is sent, and there
        // is nothing for the upstream to cancel.
        var call = client.CallToolAsync("lab-wait__wait").AsTask();
        await Eventually.TrueAsync(() => call.IsCompleted || (File.Exists(callLog) && File.ReadAllText(callLog).Contains("wait", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(60), "the upstream to log the call");
        Assert.False(call.IsCompleted);
        var switchId = await Host.KillAsync(new { scope = "tenant", tenantId = "kill-tenant", reason = "stop the waiting call" });
        try
        {
            var result = await call.WaitAsync(TimeSpan.FromSeconds(30));
            var refusal = RefusalAssert.Refused(result, RefusalCodes.Killed);
            Assert.Equal("tenant", refusal.GetProperty("scope").GetString());
            await Eventually.TrueAsync(() => File.Exists(cancelLog) && File.ReadAllText(cancelLog).Trim().Length > 0, TimeSpan.FromSeconds(60), "the upstream to log the cancellation");
        }
        finally
        {
            await Host.ClearAsync(switchId);
        }
    }

    [UpstreamFact]
    public async Task A_server_kill_switch_stops_the_upstream_process_and_clearing_starts_it_again()
    {
        await Host.RegisterNodeAsync("lab-switch", UpstreamPackages.Lab, trustAnnotations: true);
        var (token, _) = await Host.MintAsync("demo", "switch-agent", scopes: ["server:lab-switch:read"]);
        await using var client = await Host.ConnectAsync(token);
        var pending = client.CallToolAsync("lab-switch__wait").AsTask();
        await Task.Delay(300);

        var switchId = await Host.KillAsync(new { scope = "server", serverId = "lab-switch", reason = "upstream misbehaves" });
        try
        {
            RefusalAssert.Refused(await pending.WaitAsync(TimeSpan.FromSeconds(30)), RefusalCodes.Killed);
            await Eventually.TrueAsync(() => Host.Upstream("lab-switch")?.Status == "killed", TimeSpan.FromSeconds(60), "the upstream process to be killed");
            RefusalAssert.Refused(await client.CallToolAsync("lab-switch__echo", new Dictionary<string, object?> { ["text"] = "x" }), RefusalCodes.Killed);
        }
        finally
        {
            await Host.ClearAsync(switchId);
        }

        await Host.WaitForUpstreamAsync("lab-switch");
        RefusalAssert.Succeeded(await client.CallToolAsync("lab-switch__echo", new Dictionary<string, object?> { ["text"] = "back" }));
    }

    [UpstreamFact]
    public async Task A_crashing_upstream_is_unavailable_at_once_then_restarted_and_others_carry_on()
    {
        await Host.RegisterNodeAsync("lab-crash", UpstreamPackages.Lab, trustAnnotations: true);
        await Host.RegisterNodeAsync("lab-steady", UpstreamPackages.Lab, trustAnnotations: true);
        var (token, _) = await Host.MintAsync("demo", "crash-agent", scopes: ["server:lab-crash:read", "server:lab-steady:read"]);
        await using var client = await Host.ConnectAsync(token);
        var restartsBefore = Host.Upstream("lab-crash")!.Restarts;

        var crashed = await client.CallToolAsync("lab-crash__crash").AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        var refusal = RefusalAssert.Refused(crashed, RefusalCodes.UpstreamUnavailable);
        Assert.True(refusal.GetProperty("retry_after").GetInt32() >= 1);

        // The other upstream never noticed.
        RefusalAssert.Succeeded(await client.CallToolAsync("lab-steady__echo", new Dictionary<string, object?> { ["text"] = "steady" }));

        await Host.WaitForUpstreamAsync("lab-crash", restartsAtLeast: restartsBefore + 1);
        var echo = await client.CallToolAsync("lab-crash__echo", new Dictionary<string, object?> { ["text"] = "restarted" });
        RefusalAssert.Succeeded(echo);
        Assert.Equal("restarted", RefusalAssert.Text(echo));
    }

    [UpstreamFact]
    public async Task A_hanging_upstream_times_out_as_unavailable_and_is_restarted()
    {
        // ControlPlane:Downstream:Servers:lab-hang:Timeout is 3 s in this host.
        await Host.RegisterNodeAsync("lab-hang", UpstreamPackages.Lab, trustAnnotations: true);
        var (token, _) = await Host.MintAsync("demo", "hang-agent", scopes: ["server:lab-hang:read"]);
        await using var client = await Host.ConnectAsync(token);
        var restartsBefore = Host.Upstream("lab-hang")!.Restarts;

        var hung = await client.CallToolAsync("lab-hang__hang").AsTask().WaitAsync(TimeSpan.FromSeconds(60));
        RefusalAssert.Refused(hung, RefusalCodes.UpstreamUnavailable);

        // It answers no ping either, so it is restarted as hung.
        await Host.WaitForUpstreamAsync("lab-hang", restartsAtLeast: restartsBefore + 1);
        RefusalAssert.Succeeded(await client.CallToolAsync("lab-hang__echo", new Dictionary<string, object?> { ["text"] = "alive" }));
    }

    [UpstreamFact]
    public async Task Clients_are_told_when_the_tool_list_changes_and_new_upstreams_start_read_only()
    {
        var (token, _) = await Host.MintAsync("demo", "watcher", scopes: ["server:memory:read", "server:memory:write"]);
        await using var client = await Host.ConnectAsync(token);
        var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var _ = client.RegisterNotificationHandler(NotificationMethods.ToolListChangedNotification, (_, _) =>
        {
            changed.TrySetResult();
            return default;
        });

        var memoryFile = Path.Combine(Host.DataDir, "memory.jsonl");
        await Host.RegisterUpstreamAsync(new { id = "memory", transport = "stdio", command = "node", args = new[] { UpstreamPackages.Memory }, env = new Dictionary<string, string> { ["MEMORY_FILE_PATH"] = memoryFile }, trustAnnotations = true });
        await changed.Task.WaitAsync(TimeSpan.FromSeconds(90));
        await Host.WaitForUpstreamAsync("memory");

        var names = (await client.ListToolsAsync()).Select(t => t.Name).ToHashSet();
        Assert.Contains("memory__read_graph", names);
        Assert.DoesNotContain("memory__create_entities", names);
        var graph = await client.CallToolAsync("memory__read_graph");
        RefusalAssert.Succeeded(graph);
        RefusalAssert.Refused(await client.CallToolAsync("memory__create_entities", new Dictionary<string, object?>
        {
            ["entities"] = new[] { new { name = "Ada", entityType = "person", observations = new[] { "wrote the first program" } } },
        }), RefusalCodes.ReadOnly);
    }

    [UpstreamFact]
    public async Task Resources_and_prompts_are_guarded_audited_reads()
    {
        await Host.RegisterNodeAsync("everything-res", UpstreamPackages.Everything, ["stdio"]);
        var (token, _) = await Host.MintAsync("demo", "reader", scopes: ["server:everything-res:read"]);
        await using var client = await Host.ConnectAsync(token, "/mcp/everything-res");

        const string uri = "demo://resource/static/document/architecture.md";
        Assert.Contains(uri, (await client.ListResourcesAsync()).Select(r => r.Uri));
        var read = await client.ReadResourceAsync(uri);
        Assert.Contains("rchitecture", Assert.IsType<TextResourceContents>(Assert.Single(read.Contents)).Text, StringComparison.Ordinal);

        Assert.Contains("simple-prompt", (await client.ListPromptsAsync()).Select(p => p.Name));
        var prompt = await client.GetPromptAsync("simple-prompt");
        Assert.Equal("This is a simple prompt without arguments.", Assert.IsType<TextContentBlock>(Assert.Single(prompt.Messages).Content).Text);

        // On /mcp the prompt carries its server's prefix, and the resource is routed to the server that listed it.
        await using (var aggregate = await Host.ConnectAsync(token))
        {
            Assert.Contains("everything-res__simple-prompt", (await aggregate.ListPromptsAsync()).Select(p => p.Name));
            Assert.Contains(uri, (await aggregate.ListResourcesAsync()).Select(r => r.Uri));
            Assert.Single((await aggregate.ReadResourceAsync(uri)).Contents);
        }

        // Without the read scope: nothing listed, and a read is refused with a JSON-RPC error naming the code.
        var (other, _) = await Host.MintAsync("demo", "not-a-reader", scopes: ["server:support-desk:read"]);
        await using (var outsider = await Host.ConnectAsync(other, "/mcp/everything-res"))
        {
            Assert.Empty(await outsider.ListResourcesAsync());
            var refused = await Assert.ThrowsAnyAsync<ModelContextProtocol.McpException>(() => outsider.ReadResourceAsync(uri).AsTask());
            Assert.Contains(RefusalCodes.ForbiddenScope, refused.Message, StringComparison.Ordinal);
        }

        using var http = Host.OperatorHttp();
        var audit = await http.GetStringAsync("/api/v1/audit?tenantId=demo&tool=" + Uri.EscapeDataString(uri));
        var items = JsonDocument.Parse(audit).RootElement.GetProperty("items").EnumerateArray().ToList();
        Assert.Contains(items, i => i.GetProperty("decision").GetString() == "allowed" && i.GetProperty("outcome").GetString() == "success");
        Assert.Contains(items, i => i.GetProperty("decision").GetString() == "refused" && i.GetProperty("code").GetString() == RefusalCodes.ForbiddenScope);
    }

    [UpstreamFact]
    public async Task Sampling_and_elicitation_from_an_upstream_reach_the_calling_client()
    {
        await Host.RegisterNodeAsync("everything-ask", UpstreamPackages.Everything, ["stdio"]);
        using (var http = Host.OperatorHttp())
        {
            // Both tools declare themselves non-read-only; the operator vouches for them so the test needs no confirmation round.
            foreach (var tool in new[] { "trigger-sampling-request", "trigger-elicitation-request" })
            {
                var response = await http.PutAsJsonAsync($"/api/v1/servers/everything-ask/tools/{tool}", new { classification = "read", reason = "asks the user, changes nothing" });
                Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
            }
        }

        var (token, _) = await Host.MintAsync("demo", "asker", scopes: ["server:everything-ask:read"]);
        var sampled = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var client = await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(Host.BaseUrl, "/mcp"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + token },
        }), new McpClientOptions
        {
            Handlers = new McpClientHandlers
            {
#pragma warning disable MCP9005 // Sampling is deprecated by the newest specification; the everything server still uses it.
                SamplingHandler = (request, _, _) =>
                {
                    sampled.TrySetResult(JsonSerializer.Serialize(request!.Messages, McpJsonUtilities.DefaultOptions));
                    return ValueTask.FromResult(new CreateMessageResult { Model = "gateway-test-model", Role = Role.Assistant, Content = [new TextContentBlock { Text = "sampled answer" }] });
                },
#pragma warning restore MCP9005
                ElicitationHandler = (_, _) => ValueTask.FromResult(new ElicitResult { Action = "decline" }),
            },
        });

        var sampling = await client.CallToolAsync("everything-ask__trigger-sampling-request", new Dictionary<string, object?> { ["prompt"] = "what is two plus two" });
        RefusalAssert.Succeeded(sampling);
        Assert.Contains("what is two plus two", await sampled.Task.WaitAsync(TimeSpan.FromSeconds(30)), StringComparison.Ordinal);
        Assert.Contains("gateway-test-model", RefusalAssert.Text(sampling), StringComparison.Ordinal);

        var elicitation = await client.CallToolAsync("everything-ask__trigger-elicitation-request");
        RefusalAssert.Succeeded(elicitation);
        Assert.Contains("declined", RefusalAssert.Text(elicitation), StringComparison.Ordinal);
    }

    [UpstreamFact]
    public async Task Upstream_log_messages_reach_the_session_with_a_call_in_flight()
    {
        await Host.RegisterNodeAsync("everything-log", UpstreamPackages.Everything, ["stdio"], trustAnnotations: true);
        using (var http = Host.OperatorHttp())
        {
            var response = await http.PutAsJsonAsync("/api/v1/servers/everything-log/tools/toggle-simulated-logging", new { classification = "read", reason = "only starts log lines" });
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        }

        var (token, _) = await Host.MintAsync("demo", "log-watcher", scopes: ["server:everything-log:read"]);
        await using var client = await Host.ConnectAsync(token);
        var logged = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var subscription = client.RegisterNotificationHandler("notifications/message", (notification, _) =>
        {
            if (notification.Params is { } json) logged.TrySetResult(JsonSerializer.SerializeToElement(json));
            return default;
        });

        RefusalAssert.Succeeded(await client.CallToolAsync("everything-log__toggle-simulated-logging"));
        // The server logs every 5 s; a 7 s call keeps this session the one with a call in flight meanwhile.
        RefusalAssert.Succeeded(await client.CallToolAsync("everything-log__trigger-long-running-operation", new Dictionary<string, object?> { ["duration"] = 7, ["steps"] = 7 }));
        var message = await logged.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(string.IsNullOrEmpty(message.GetProperty("level").GetString()));
        Assert.True(message.TryGetProperty("data", out _));
    }

    [UpstreamFact]
    public async Task An_operator_can_reclassify_an_upstream_tool()
    {
        await Host.RegisterNodeAsync("lab-classify", UpstreamPackages.Lab, trustAnnotations: true);
        var (token, _) = await Host.MintAsync("demo", "classify-agent", scopes: ["server:lab-classify:read"]);
        await using var client = await Host.ConnectAsync(token);

        // 'reset' declares nothing, so it is an action: hidden and refused on a read-only server.
        Assert.DoesNotContain("lab-classify__reset", (await client.ListToolsAsync()).Select(t => t.Name));
        using var http = Host.OperatorHttp();
        var response = await http.PutAsJsonAsync("/api/v1/servers/lab-classify/tools/reset", new { classification = "read", reason = "reset only clears a cache" });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        await Eventually.TrueAsync(async () => (await client.ListToolsAsync()).Any(t => t.Name == "lab-classify__reset"), TimeSpan.FromSeconds(60), "the reclassified tool to be listed");
        RefusalAssert.Succeeded(await client.CallToolAsync("lab-classify__reset"));
    }

    /// <summary>Reports on the thread that delivers the notification, in order (Progress&lt;T&gt; would post and reorder).</summary>
    private sealed class SynchronousProgress(Action<ProgressNotificationValue> report) : IProgress<ProgressNotificationValue>
    {
        public void Report(ProgressNotificationValue value) => report(value);
    }
}
