using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Flannel.Reconciliation;
using Flannel.Netlink;
using Flannel.Subnets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Flannel.Backends.Vxlan;

/// <summary>
/// flannel's <c>vxlan</c> backend: a <c>flannel.&lt;VNI&gt;</c> device (and <c>flannel-v6.&lt;VNI&gt;</c> for
/// IPv6 pods), and for every remote host a permanent neighbour, a permanent FDB entry and an onlink route,
/// continuously reconciled against the kernel.
/// </summary>
public sealed partial class VxlanBackend : ReconcilingBackend
{
    /// <summary>The backend type in net-conf.json and in lease attributes.</summary>
    public const string TypeName = "vxlan";

    private readonly VxlanBackendOptions _options;
    private readonly ISysctl? _sysctl;

    /// <summary>Creates the backend over the node's <see cref="INetlink"/>.</summary>
    /// <param name="netlink">The kernel interface (bound to the node's network namespace).</param>
    /// <param name="options">Host-side options (resync interval, route mode).</param>
    /// <param name="timeProvider">Clock for resync ticks and retry backoff.</param>
    /// <param name="logger">Logger; none when null.</param>
    /// <param name="meterFactory">Creates the <c>Flannel.Backends</c> meter; a private meter when null.</param>
    /// <param name="sysctl">
    /// Sysctls of the node's namespace, for <c>accept_ra=0</c> on the IPv6 device (flannel ignores failures there, and
    /// without an <see cref="ISysctl"/> the setting is left alone and logged).
    /// </param>
    public VxlanBackend(INetlink netlink, IOptions<VxlanBackendOptions> options, TimeProvider timeProvider, ILogger<VxlanBackend>? logger = null, IMeterFactory? meterFactory = null, ISysctl? sysctl = null)
        : base(TypeName, netlink, (options ?? throw new ArgumentNullException(nameof(options))).Value.ResyncInterval, timeProvider, logger, meterFactory)
    {
        _options = options.Value;
        _sysctl = sysctl;
    }

    /// <inheritdoc />
    /// <exception cref="Flannel.Configuration.NetworkConfigException">The <c>Backend</c> options are invalid.</exception>
    /// <exception cref="InvalidOperationException">The interface lacks an address of an enabled family, or the kernel did not keep the VtepMAC.</exception>
    public override async ValueTask<INetwork> RegisterNetworkAsync(BackendContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        VxlanConfig config = VxlanConfig.Parse(context.Config.Backend);
        ExternalInterface external = context.ExternalInterface;
        VxlanDevice? v4 = null;
        VxlanDevice? v6 = null;

        if (context.Config.EnableIPv4)
        {
            IPAddress local = external.IfaceAddress
                ?? throw new InvalidOperationException($"vxlan: IPv4 is enabled but interface {external.Name} has no IPv4 address to use as the VTEP address");
            v4 = await CreateDeviceAsync(AddressFamily.InterNetwork, config, external, local, context.PreviousAttributes?.BackendData, cancellationToken).ConfigureAwait(false);
        }

        if (context.Config.EnableIPv6)
        {
            IPAddress local = external.IfaceIPv6Address
                ?? throw new InvalidOperationException($"vxlan: IPv6 is enabled but interface {external.Name} has no IPv6 address to use as the VTEP address");
            v6 = await CreateDeviceAsync(AddressFamily.InterNetworkV6, config, external, local, context.PreviousAttributes?.BackendV6Data, cancellationToken).ConfigureAwait(false);
            await VxlanNetwork.DisableRouterAdvertisementsAsync(_sysctl, v6, Logger, cancellationToken).ConfigureAwait(false);
        }

        if (v4 is null && v6 is null)
        {
            throw new InvalidOperationException("vxlan: neither IPv4 nor IPv6 is enabled");
        }

        var attributes = new LeaseAttributes
        {
            PublicIP = context.Config.EnableIPv4 ? external.PublicIP ?? external.IfaceAddress ?? IPAddress.Any : IPAddress.Any,
            PublicIPv6 = context.Config.EnableIPv6 ? external.PublicIPv6 ?? external.IfaceIPv6Address : null,
            BackendType = TypeName,
            BackendData = v4 is null ? null : VxlanBackendData.Format(config.Vni, v4.VtepMac),
            BackendV6Data = v6 is null ? null : VxlanBackendData.Format(config.Vni, v6.VtepMac),
        };

        return new VxlanNetwork(Netlink, _sysctl, TimeProvider, _options, CreateMetrics(), Logger, context.Config, config, v4, v6, attributes);
    }

    private async ValueTask<VxlanDevice> CreateDeviceAsync(AddressFamily family, VxlanConfig config, ExternalInterface external, IPAddress local, string? previousBackendData, CancellationToken cancellationToken)
    {
        string name = VxlanDevice.NameFor(family, config.Vni);
        int underlayMtu = config.Mtu > 0 ? config.Mtu : external.Mtu;
        int mtu = underlayMtu - VxlanDevice.OverheadFor(local);
        if (mtu < 68)
        {
            throw new InvalidOperationException($"vxlan: the underlay MTU {underlayMtu} leaves {mtu} bytes for {name}, below the IPv4 minimum of 68");
        }

        // Keep the VtepMAC stable across restarts, so peers' neighbour and FDB entries stay valid: the live
        // device's MAC first, then the one this node published before (the store remembers it), else a new one.
        LinkInfo? existing = await Netlink.GetLinkAsync(name, cancellationToken).ConfigureAwait(false);
        MacAddress mac;
        if (existing is { Kind: "vxlan", Address: { } live } && live != MacAddress.Zero && !live.IsMulticast)
        {
            mac = live;
            LogReusingMac(Logger, name, mac, "the existing device");
        }
        else if (VxlanBackendData.TryParseVtepMac(previousBackendData) is { } remembered && !remembered.IsMulticast)
        {
            mac = remembered;
            LogReusingMac(Logger, name, mac, "the previously published lease");
        }
        else
        {
            mac = MacAddress.NewRandomLocal();
        }

        var spec = new VxlanLinkSpec
        {
            Name = name,
            Vni = config.Vni,
            Local = local,
            UnderlayIndex = external.Index,
            Port = config.Port,
            Learning = config.Learning,
            Gbp = config.Gbp,
            Mtu = mtu,
        };
        var device = new VxlanDevice(family, config.Vni, spec, mac);
        LinkInfo link = await device.EnsureAsync(Netlink, Logger, cancellationToken).ConfigureAwait(false);
        LogDeviceReady(Logger, name, link.Index, mac, mtu);
        return device;
    }

    [LoggerMessage(EventId = 6000, Level = LogLevel.Information, Message = "vxlan: device {Device} (index {Index}) ready, VtepMAC {Mac}, MTU {Mtu}")]
    private static partial void LogDeviceReady(ILogger logger, string device, int index, MacAddress mac, int mtu);

    [LoggerMessage(EventId = 6001, Level = LogLevel.Information, Message = "vxlan: {Device} keeps VtepMAC {Mac} from {Source}")]
    private static partial void LogReusingMac(ILogger logger, string device, MacAddress mac, string source);
}
