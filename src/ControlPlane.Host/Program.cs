using ControlPlane.Host.Hosting;

var builder = WebApplication.CreateBuilder(args);
builder.AddControlPlane();

var app = builder.Build();
app.MapControlPlane();
app.Run();

/// <summary>The entry point, visible to tests that host the control plane in-process.</summary>
public partial class Program;
