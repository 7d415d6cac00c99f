using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Flannel.Backends.WireGuard.Devices;
using Flannel.Backends.WireGuard.Keys;
using Flannel.Backends.WireGuard.Peers;
using Flannel.Netlink;
using Flannel.Reconciliation;
using Flannel.Subnets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Flannel.Backends.WireGuard;

/// <summary>
/// flannel's <c>wireguard</c> backend: pod traffic between nodes is encrypted by WireGuard devices
/// (<c>flannel-wg</c>, and <c>flannel-wg-v6</c> in separate mode) with one peer per remote node. The devices are
/// kernel WireGuard when the kernel has it and userspace wireguard-go otherwise, chosen at run time and logged.
/// </summary>
public sealed class WireGuardBackend : IBackend
{
    /// <summary>The backend type in net-conf.json and in lease attributes.</summary>
    public const string TypeName = "wireguard";

    /// <summary>WireGuard's per-packet overhead flannel subtracts from the MTU: IPv6 header 40 + UDP 8 + WireGuard 32.</summary>
    public const int Overhead = 80;

    private readonly INetlink _netlink;
    private readonly WireGuardBackendOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly IMeterFactory? _meterFactory;
    private readonly Func<WireGuardBackendOptions, ILogger, IWireGuardPlatform> _platformFactory;

    /// <summary>Creates the backend over the node's <see cref="INetlink"/>.</summary>
    /// <param name="netlink">The kernel interface (bound to the node's network namespace).</param>
    /// <param name="options">Host-side options (control path, key file, namespaces, wireguard-go, resync interval).</param>
    /// <param name="timeProvider">Clock for resync ticks and retry backoff.</param>
    /// <param name="logger">Logger; none when null.</param>
    /// <param name="meterFactory">Creates the <c>Flannel.Backends</c> meter; a private meter when null.</param>
    public WireGuardBackend(INetlink netlink, IOptions<WireGuardBackendOptions> options, TimeProvider timeProvider, ILogger<WireGuardBackend>? logger = null, IMeterFactory? meterFactory = null)
        : this(netlink, options, timeProvider, logger, meterFactory, static (o, l) => new SystemWireGuardPlatform(o, l))
    {
    }

    internal WireGuardBackend(
        INetlink netlink,
        IOptions<WireGuardBackendOptions> options,
        TimeProvider timeProvider,
        ILogger? logger,
        IMeterFactory? meterFactory,
        Func<WireGuardBackendOptions, ILogger, IWireGuardPlatform> platformFactory)
    {
        ArgumentNullException.ThrowIfNull(netlink);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        _netlink = netlink;
        _options = options.Value;
        _timeProvider = timeProvider;
        _logger = logger ?? NullLogger.Instance;
        _meterFactory = meterFactory;
        _platformFactory = platformFactory;
        if (_options.ResyncInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), _options.ResyncInterval, "WireGuardBackendOptions.ResyncInterval must be positive.");
        }
    }

    /// <inheritdoc />
    public string BackendType => TypeName;

    /// <inheritdoc />
    /// <exception cref="Configuration.NetworkConfigException">The <c>Backend</c> object is malformed (e.g. an unknown Mode).</exception>
    /// <exception cref="WireGuardKeyFileException">The key file cannot be read or written.</exception>
    /// <exception cref="InvalidOperationException">No WireGuard implementation can carry the devices, or a device cannot be set up.</exception>
    public async ValueTask<INetwork> RegisterNetworkAsync(BackendContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("wireguard: the backend needs Linux (network namespaces, the key file's mode 0400)");
        }

        Configuration.NetworkConfig network = context.Config;
        ExternalInterface external = context.ExternalInterface;
        WireGuardConfig config = WireGuardConfig.Parse(network.Backend);

        int underlayMtu = config.Mtu != 0 ? config.Mtu : external.Mtu;
        int mtu = underlayMtu - Overhead;
        if (mtu < 68)
        {
            throw new InvalidOperationException($"wireguard: MTU {underlayMtu} leaves {mtu} for the devices after WireGuard's {Overhead} bytes; the minimum is 68");
        }

        WireGuardKeyPair keys = WireGuardKeyFile.LoadOrCreate(WireGuardKeyFile.ResolvePath(_options.KeyFile), _logger);
        IReadOnlyList<WireGuardDeviceSpec> devices = DevicesFor(config, network);
        IWireGuardPlatform platform = _platformFactory(_options, _logger);
        var deviceSet = new WireGuardDeviceSet(_netlink, platform, keys, mtu, devices, _logger);
        try
        {
            await deviceSet.StartAsync(_options.ControlPath, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await deviceSet.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        // flannel publishes the same public key in both families' data, each with the port its device listens on.
        ushort portV6 = config.Mode == WireGuardMode.Separate ? config.ListenPortV6 : config.ListenPort;
        var attributes = new LeaseAttributes
        {
            PublicIP = network.EnableIPv4 ? external.PublicIP ?? external.IfaceAddress ?? IPAddress.Any : IPAddress.Any,
            PublicIPv6 = network.EnableIPv6 ? external.PublicIPv6 ?? external.IfaceIPv6Address : null,
            BackendType = TypeName,
            BackendData = network.EnableIPv4 ? new WireGuardLeaseData(keys.PublicKey, config.ListenPort).ToJson() : null,
            BackendV6Data = network.EnableIPv6 ? new WireGuardLeaseData(keys.PublicKey, portV6).ToJson() : null,
        };

        var peers = new WireGuardPeerBuilder(config, network, external);
        var metrics = new BackendMetrics(TypeName, _meterFactory);
        return new WireGuardNetwork(_netlink, deviceSet, peers, keys.PublicKey, network, attributes, _timeProvider, _options.ResyncInterval, metrics, _logger);
    }

    /// <summary>
    /// flannel's devices: in separate mode <c>flannel-wg</c> (IPv4, ListenPort) and <c>flannel-wg-v6</c> (IPv6,
    /// ListenPortV6), each only when its family is enabled; in the other modes one <c>flannel-wg</c> for both.
    /// </summary>
    internal static IReadOnlyList<WireGuardDeviceSpec> DevicesFor(WireGuardConfig config, Configuration.NetworkConfig network)
    {
        var devices = new List<WireGuardDeviceSpec>(2);
        if (config.Mode == WireGuardMode.Separate)
        {
            if (network.EnableIPv4)
            {
                devices.Add(new WireGuardDeviceSpec(WireGuardDeviceSpec.DefaultName, config.ListenPort, [AddressFamily.InterNetwork]));
            }

            if (network.EnableIPv6)
            {
                devices.Add(new WireGuardDeviceSpec(WireGuardDeviceSpec.IPv6Name, config.ListenPortV6, [AddressFamily.InterNetworkV6]));
            }
        }
        else
        {
            var families = new List<AddressFamily>(2);
            if (network.EnableIPv4)
            {
                families.Add(AddressFamily.InterNetwork);
            }

            if (network.EnableIPv6)
            {
                families.Add(AddressFamily.InterNetworkV6);
            }

            devices.Add(new WireGuardDeviceSpec(WireGuardDeviceSpec.DefaultName, config.ListenPort, families));
        }

        return devices;
    }
}
