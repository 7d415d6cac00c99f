using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Flannel.Netlink.WireGuard;

namespace Flannel.Backends.WireGuard.Userspace;

/// <summary>
/// Configures userspace WireGuard (wireguard-go) devices over their configuration socket,
/// <c>/var/run/wireguard/&lt;device&gt;.sock</c>, with the cross-platform text protocol
/// (https://www.wireguard.com/xplatform/): <c>get=1</c> and <c>set=1</c>, one <c>key=value</c> per line, a blank
/// line ending the request, and <c>errno=N</c> plus a blank line ending the reply.
/// </summary>
/// <remarks>
/// <code>
/// set=1                         get=1
/// private_key=&lt;64 hex&gt;          (blank line)
/// listen_port=51820             reply: private_key=… listen_port=… then per peer
/// replace_peers=true              public_key=… preshared_key=… protocol_version=1
/// public_key=&lt;64 hex&gt;             endpoint=… last_handshake_time_sec/nsec=…
/// endpoint=198.18.0.12:51820      tx_bytes=… rx_bytes=… persistent_keepalive_interval=…
/// persistent_keepalive_interval=25 allowed_ip=… (one line each)
/// replace_allowed_ips=true      errno=0
/// allowed_ip=10.244.2.0/24      (blank line)
/// (blank line)
/// reply: errno=0, blank line
/// </code>
/// A <c>public_key</c> line starts a peer section; <c>replace_allowed_ips</c> acts when read, so it precedes the
/// <c>allowed_ip</c> lines. Keys are hex here, not base64. The socket directory is a parameter because a node
/// that is one of several on a machine sees its own private /var/run/wireguard (see docs/backends.md).
/// </remarks>
public sealed class WireGuardUapiClient : IWireGuardControl
{
    /// <summary>Where wireguard-go (and wg, wg-quick) put the sockets.</summary>
    public const string DefaultSocketDirectory = "/var/run/wireguard";

    /// <summary>A reply longer than this is refused rather than buffered (a device with tens of thousands of peers is still far below).</summary>
    private const int MaxReplyBytes = 64 * 1024 * 1024;

    private static readonly TimeSpan s_defaultTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Creates a client for the sockets in <paramref name="socketDirectory"/>.</summary>
    public WireGuardUapiClient(string socketDirectory = DefaultSocketDirectory, TimeSpan? timeout = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketDirectory);
        SocketDirectory = socketDirectory;
        Timeout = timeout ?? s_defaultTimeout;
    }

    /// <summary>The directory holding the <c>&lt;device&gt;.sock</c> sockets.</summary>
    public string SocketDirectory { get; }

    /// <summary>The longest one request may take.</summary>
    public TimeSpan Timeout { get; }

    /// <inheritdoc />
    public string Description => $"userspace (wireguard-go configuration socket in {SocketDirectory})";

    /// <summary>The socket path of device <paramref name="name"/>.</summary>
    public string SocketPath(string name)
    {
        ValidateName(name);
        return Path.Combine(SocketDirectory, name + ".sock");
    }

    /// <summary>True when a process is accepting connections on the device's socket.</summary>
    public async ValueTask<bool> IsListeningAsync(string name, CancellationToken cancellationToken)
    {
        using Socket? socket = await TryConnectAsync(SocketPath(name), cancellationToken).ConfigureAwait(false);
        return socket is not null;
    }

    /// <inheritdoc />
    /// <remarks>Null when there is no socket, or nothing listens on it (a stale socket of a process that died).</remarks>
    public async ValueTask<WireGuardDevice?> GetDeviceAsync(string name, CancellationToken cancellationToken)
    {
        string path = SocketPath(name);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        using Socket? socket = await TryConnectAsync(path, timeout.Token).ConfigureAwait(false);
        if (socket is null)
        {
            return null;
        }

        string reply = await ExchangeAsync(socket, "get=1\n\n", path, timeout.Token).ConfigureAwait(false);
        return ParseGet(name, reply, path);
    }

    /// <inheritdoc />
    public async ValueTask SetDeviceAsync(WireGuardDeviceUpdate update, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(update);
        string path = SocketPath(update.Name);
        string request = FormatSet(update);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        using Socket socket = await TryConnectAsync(path, timeout.Token).ConfigureAwait(false)
            ?? throw new WireGuardUapiException($"no wireguard-go process listens on {path}: the userspace device {update.Name} is not running");
        string reply = await ExchangeAsync(socket, request, path, timeout.Token).ConfigureAwait(false);
        int errno = ParseErrno(reply, path);
        if (errno != 0)
        {
            throw new WireGuardUapiException($"wireguard-go refused the configuration of {update.Name} ({path}): errno={errno}", errno);
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>The <c>set=1</c> request for <paramref name="update"/>, blank line included.</summary>
    internal static string FormatSet(WireGuardDeviceUpdate update)
    {
        var text = new StringBuilder("set=1\n");
        if (update.PrivateKey is WireGuardKey privateKey)
        {
            text.Append("private_key=").Append(privateKey.ToHex()).Append('\n');
        }

        if (update.ListenPort is ushort port)
        {
            text.Append(CultureInfo.InvariantCulture, $"listen_port={port}\n");
        }

        if (update.FirewallMark is uint mark)
        {
            text.Append(CultureInfo.InvariantCulture, $"fwmark={mark}\n");
        }

        if (update.ReplacePeers)
        {
            text.Append("replace_peers=true\n");
        }

        foreach (WireGuardPeerUpdate peer in update.Peers)
        {
            text.Append("public_key=").Append(peer.PublicKey.ToHex()).Append('\n');
            if (peer.Remove)
            {
                text.Append("remove=true\n");
                continue;
            }

            if (peer.UpdateOnly)
            {
                text.Append("update_only=true\n");
            }

            if (peer.PresharedKey is WireGuardKey psk)
            {
                text.Append("preshared_key=").Append(psk.ToHex()).Append('\n');
            }

            if (peer.Endpoint is IPEndPoint endpoint)
            {
                // IPEndPoint prints [v6]:port and v4:port, the forms wireguard-go parses.
                text.Append("endpoint=").Append(endpoint.ToString()).Append('\n');
            }

            if (peer.PersistentKeepaliveInterval is ushort keepalive)
            {
                text.Append(CultureInfo.InvariantCulture, $"persistent_keepalive_interval={keepalive}\n");
            }

            if (peer.ReplaceAllowedIps)
            {
                text.Append("replace_allowed_ips=true\n");
            }

            foreach (IPNetwork network in peer.AllowedIps)
            {
                text.Append("allowed_ip=").Append(network.ToString()).Append('\n');
            }
        }

        return text.Append('\n').ToString();
    }

    /// <summary>Parses a <c>get=1</c> reply.</summary>
    /// <exception cref="WireGuardUapiException">The reply is malformed or reports an error.</exception>
    internal static WireGuardDevice ParseGet(string name, string reply, string source)
    {
        WireGuardKey? privateKey = null;
        ushort listenPort = 0;
        uint firewallMark = 0;
        var peers = new List<WireGuardPeer>();
        PeerFields? peer = null;
        int? errno = null;
        foreach (string line in reply.Split('\n'))
        {
            if (line.Length == 0)
            {
                continue;
            }

            int equals = line.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw Malformed(source, line, "is not key=value");
            }

            string key = line[..equals];
            string value = line[(equals + 1)..];
            try
            {
                switch (key)
                {
                    case "errno":
                        errno = int.Parse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
                        break;
                    case "private_key":
                        privateKey = NonZero(WireGuardKey.ParseHex(value));
                        break;
                    case "listen_port":
                        listenPort = ushort.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture);
                        break;
                    case "fwmark":
                        firewallMark = uint.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture);
                        break;
                    case "public_key":
                        if (peer is not null)
                        {
                            peers.Add(peer.Build());
                        }

                        peer = new PeerFields(WireGuardKey.ParseHex(value));
                        break;
                    default:
                        if (peer is null)
                        {
                            // Unknown device keys (a newer wireguard-go, or amnezia's jc/jmin…) are skipped.
                            break;
                        }

                        peer.Set(key, value);
                        break;
                }
            }
            catch (Exception e) when (e is FormatException or OverflowException)
            {
                throw Malformed(source, line, e.Message);
            }
        }

        if (peer is not null)
        {
            peers.Add(peer.Build());
        }

        if (errno is not int code)
        {
            throw Malformed(source, "(end of reply)", "has no errno line");
        }

        if (code != 0)
        {
            throw new WireGuardUapiException($"wireguard-go could not report device {name} ({source}): errno={code}", code);
        }

        return new WireGuardDevice
        {
            Name = name,
            PrivateKey = privateKey,
            PublicKey = privateKey is WireGuardKey k ? Keys.WireGuardKeyPair.FromPrivateKey(k).PublicKey : null,
            ListenPort = listenPort,
            FirewallMark = firewallMark,
            Peers = peers,
        };
    }

    private static int ParseErrno(string reply, string source)
    {
        foreach (string line in reply.Split('\n'))
        {
            if (line.StartsWith("errno=", StringComparison.Ordinal)
                && int.TryParse(line.AsSpan(6), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int errno))
            {
                return errno;
            }
        }

        throw Malformed(source, reply.Length > 80 ? reply[..80] : reply, "has no errno line");
    }

    private static WireGuardKey? NonZero(WireGuardKey key) => key.IsZero ? null : key;

    private static WireGuardUapiException Malformed(string source, string line, string why) =>
        new($"malformed reply from {source}: line '{(line.Length > 120 ? line[..120] + "…" : line)}' {why}");

    private static async ValueTask<Socket?> TryConnectAsync(string path, CancellationToken cancellationToken)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable || e.ErrorCode == 2 /* ENOENT */)
        {
            socket.Dispose();
            return null; // a socket file left by a wireguard-go that is gone
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Sends <paramref name="request"/> and reads until the reply's terminating blank line.</summary>
    private static async Task<string> ExchangeAsync(Socket socket, string request, string path, CancellationToken cancellationToken)
    {
        try
        {
            await socket.SendAsync(Encoding.ASCII.GetBytes(request), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            var reply = new MemoryStream();
            byte[] buffer = new byte[16 * 1024];
            while (true)
            {
                int read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                reply.Write(buffer, 0, read);
                if (reply.Length > MaxReplyBytes)
                {
                    throw new WireGuardUapiException($"the reply from {path} exceeds {MaxReplyBytes} bytes");
                }

                if (EndsWithBlankLine(reply))
                {
                    break;
                }
            }

            return Encoding.ASCII.GetString(reply.GetBuffer(), 0, (int)reply.Length);
        }
        catch (SocketException e)
        {
            throw new WireGuardUapiException($"talking to {path} failed: {e.Message}", e);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw;
        }
    }

    private static bool EndsWithBlankLine(MemoryStream stream)
    {
        if (stream.Length < 2)
        {
            return false;
        }

        byte[] bytes = stream.GetBuffer();
        int end = (int)stream.Length;
        return bytes[end - 1] == (byte)'\n' && bytes[end - 2] == (byte)'\n';
    }

    private static void ValidateName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Length > 15 || name.Contains('/', StringComparison.Ordinal) || name is "." or "..")
        {
            throw new ArgumentException($"'{name}' is not a valid interface name.", nameof(name));
        }
    }

    private sealed class PeerFields(WireGuardKey publicKey)
    {
        private readonly List<IPNetwork> _allowed = [];
        private WireGuardKey? _psk;
        private IPEndPoint? _endpoint;
        private ushort _keepalive;
        private long _handshakeSeconds;
        private long _handshakeNanoseconds;
        private ulong _rx;
        private ulong _tx;
        private uint _protocolVersion;

        public void Set(string key, string value)
        {
            switch (key)
            {
                case "preshared_key":
                    _psk = NonZero(WireGuardKey.ParseHex(value));
                    break;
                case "endpoint":
                    _endpoint = IPEndPoint.TryParse(value, out IPEndPoint? endpoint) ? endpoint : throw new FormatException($"'{value}' is not an endpoint");
                    break;
                case "persistent_keepalive_interval":
                    _keepalive = ushort.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture);
                    break;
                case "last_handshake_time_sec":
                    _handshakeSeconds = long.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture);
                    break;
                case "last_handshake_time_nsec":
                    _handshakeNanoseconds = long.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture);
                    break;
                case "rx_bytes":
                    _rx = ulong.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture);
                    break;
                case "tx_bytes":
                    _tx = ulong.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture);
                    break;
                case "protocol_version":
                    _protocolVersion = uint.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture);
                    break;
                case "allowed_ip":
                    _allowed.Add(IPNetwork.TryParse(value, out IPNetwork network) ? network : throw new FormatException($"'{value}' is not a network"));
                    break;
            }
        }

        public WireGuardPeer Build() => new()
        {
            PublicKey = publicKey,
            PresharedKey = _psk,
            Endpoint = _endpoint,
            PersistentKeepaliveInterval = _keepalive,
            LastHandshake = _handshakeSeconds == 0 && _handshakeNanoseconds == 0
                ? null
                : DateTimeOffset.FromUnixTimeSeconds(_handshakeSeconds).AddTicks(_handshakeNanoseconds / 100),
            ReceivedBytes = _rx,
            TransmittedBytes = _tx,
            AllowedIps = _allowed,
            ProtocolVersion = _protocolVersion,
        };
    }
}

/// <summary>A userspace WireGuard device refused a request, or its socket could not be used.</summary>
public sealed class WireGuardUapiException : Exception
{
    /// <summary>Creates the exception.</summary>
    public WireGuardUapiException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public WireGuardUapiException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the errno the device replied with.</summary>
    public WireGuardUapiException(string message, int errno)
        : base(message) => Errno = errno;

    /// <summary>Creates the exception with a message and its cause.</summary>
    public WireGuardUapiException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The <c>errno=</c> value of the reply (wireguard-go sends it negative), or 0 when there was none.</summary>
    public int Errno { get; }
}
