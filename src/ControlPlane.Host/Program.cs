using ControlPlane.Host.Cluster;
using ControlPlane.Host.Hosting;
using ControlPlane.Host.OperatorConsole;

if (args is ["audit", ..]) return await AuditCommand.RunAsync(args[1..]);
if (args is ["operators", ..]) return ClusterCommands.NewOperatorKey(args[1..]);
if (args is ["db", ..]) return await ClusterCommands.MigrateDatabaseAsync(args[1..]);
if (args is ["cluster", ..]) return ClusterCertificateCommand.Run(args[1..]);

var builder = WebApplication.CreateBuilder(args);
builder.AddControlPlane();
builder.AddControlPlaneConsole();

var app = builder.Build();
app.MapControlPlane();
app.MapControlPlaneConsole();
await app.RunAsync();
return 0;

/// <summary>The entry point, visible to tests that host the control plane in-process.</summary>
public partial class Program;
