using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Upstreams.Egress;

/// <summary>
/// The <see cref="SocketsHttpHandler.ConnectCallback"/> of the HTTP upstreams' client: resolves the host itself, judges
/// every address with the <see cref="EgressPolicy"/>, and connects only to an allowed one. Checking the address actually
/// dialled (not the name at registration) is what defeats DNS rebinding; a host with no allowed address is refused before
/// any byte is sent.
/// </summary>
public sealed class EgressConnector(EgressPolicy policy, Func<string, CancellationToken, Task<IPAddress[]>>? resolve = null)
{
    private readonly Func<string, CancellationToken, Task<IPAddress[]>> _resolve = resolve ?? Dns.GetHostAddressesAsync;

    /// <summary>A handler that dials through this connector, follows no redirect (a redirect could lead to another host, with the
    /// credential headers), and ignores proxy settings (a proxy would dial the address, not this policy).</summary>
    public SocketsHttpHandler CreateHandler() => new()
    {
        ConnectCallback = ConnectAsync,
        AllowAutoRedirect = false,
        UseProxy = false,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        MaxConnectionsPerServer = 64,
    };

    public async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var host = context.DnsEndPoint.Host;
        var addresses = IPAddress.TryParse(host.Trim('[', ']'), out var literal) ? [literal] : await _resolve(host, cancellationToken);
        var allowed = new List<IPAddress>();
        string? refusal = null;
        foreach (var address in addresses)
        {
            if (policy.Refuse(address) is { } why) refusal ??= why;
            else allowed.Add(address);
        }

        if (allowed.Count == 0)
        {
            throw new HttpRequestException(HttpRequestError.ConnectionError,
                $"The egress policy refuses '{host}': " + (refusal ?? "it resolves to no address") + ". Nothing was sent.");
        }

        Exception? last = null;
        foreach (var address in allowed)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, context.DnsEndPoint.Port), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException ex)
            {
                socket.Dispose();
                last = ex;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        throw new HttpRequestException(HttpRequestError.ConnectionError, $"Could not connect to '{host}' at any allowed address.", last);
    }
}
