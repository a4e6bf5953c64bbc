using ControlPlane.Audit.Redaction;
using ControlPlane.Audit.Writing;
using ControlPlane.Guard.Auditing;
using ControlPlane.Guard.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ControlPlane.Tests.Guard.Pipeline;

/// <summary>
/// The real auditor over the real group-commit writer, started, on a <see cref="RecordingAuditStore"/> the test
/// controls. The writer's clock is the test's, so its retries of owed records happen when the test advances it.
/// </summary>
internal sealed class TestAuditing : IAsyncDisposable
{
    private TestAuditing(TimeProvider time)
    {
        Writer = new AuditWriter(Store, Options.Create(new AuditOptions()), NullLogger<AuditWriter>.Instance, time);
        Auditor = new CallAuditor(Writer, new Redactor(), PipelineKit.Hasher, new Silo(), time);
    }

    public RecordingAuditStore Store { get; } = new();

    public AuditWriter Writer { get; }

    public CallAuditor Auditor { get; }

    public static async Task<TestAuditing> StartAsync(TimeProvider time)
    {
        var auditing = new TestAuditing(time);
        await auditing.Writer.StartAsync(CancellationToken.None);
        return auditing;
    }

    public async ValueTask DisposeAsync()
    {
        using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await Writer.StopAsync(stopping.Token);
        Writer.Dispose();
    }

    /// <summary>The silo name records carry.</summary>
    internal sealed class Silo : ISiloIdentity
    {
        public string Name => "silo-test";
    }
}
