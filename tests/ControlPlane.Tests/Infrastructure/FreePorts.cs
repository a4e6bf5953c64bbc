using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Tests.Infrastructure;

internal static class FreePorts
{
    private static readonly HashSet<int> Handed = [];

    /// <summary>A loopback TCP port nobody is listening on, never the same twice in this process.</summary>
    public static int Next()
    {
        lock (Handed)
        {
            while (true)
            {
                using var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                var port = ((IPEndPoint)listener.LocalEndpoint).Port;
                if (Handed.Add(port)) return port;
            }
        }
    }
}
