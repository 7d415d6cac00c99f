using System.Net;
using System.Net.Sockets;
using Flannel.Reconciliation;
using Flannel.Configuration;
using Flannel.Netlink;
using Flannel.Subnets;
using Microsoft.Extensions.Logging;

namespace Flannel.Backends.Vxlan;

// Design note (after flannel's pkg/backend/vxlan): flannel runs VXLAN without multicast and without L2/L3
// miss handling. The agent is not in the data path: it programs, for every remote host, three static objects
// on flannel.<VNI>:
//   1. a permanent neighbour   10.244.2.0 lladdr <peer VtepMAC>       (so the kernel never ARPs for it)
//   2. a self permanent FDB    <peer VtepMAC> dst <peer PublicIP>     (where to send frames for that MAC)
//   3. a route                 10.244.2.0/24 via 10.244.2.0 onlink    (added last, once 1 and 2 exist)
// The per-remote cost is one route, one neighbour and one FDB entry. With DirectRouting, a peer whose PublicIP
// is on-link in the underlay gets a plain `10.244.2.0/24 via <PublicIP>` route instead: no encapsulation.
// Unlike flannel, everything here is desired state: it is reconciled every resync interval (flannel never
// re-checks vxlan state), stale FDB entries of a peer whose MAC changed are removed, the device is recreated
// and every peer replayed when someone deletes it, and objects of peers that vanished while the agent was down
// are garbage-collected at startup. Routes carry the Flannel.NET route protocol; the neighbours and FDB entries
// are recognised as ours because they are permanent entries on our own device.

/// <summary>The VXLAN network on this node: its devices and the per-peer objects.</summary>
internal sealed partial class VxlanNetwork : ReconcilingNetwork, IOverlayNetwork, ILeaseAdmission
{
    private readonly VxlanDevice? _v4;
    private readonly VxlanDevice? _v6;
    private readonly VxlanConfig _config;
    private readonly NetworkConfig _networkConfig;
    private readonly VxlanRouteMode _routeMode;
    private readonly NexthopIdAllocator _nexthopIds = new();
    private readonly ISysctl? _sysctl;

    public VxlanNetwork(
        INetlink netlink,
        ISysctl? sysctl,
        TimeProvider timeProvider,
        VxlanBackendOptions options,
        BackendMetrics metrics,
        ILogger logger,
        NetworkConfig networkConfig,
        VxlanConfig config,
        VxlanDevice? v4,
        VxlanDevice? v6,
        LeaseAttributes attributes)
        : base(VxlanBackend.TypeName, netlink, timeProvider, options.ResyncInterval, metrics, logger)
    {
        _networkConfig = networkConfig;
        _sysctl = sysctl;
        _config = config;
        _routeMode = options.RouteMode;
        _v4 = v4;
        _v6 = v6;
        LeaseAttributes = attributes;
        Mtu = Devices.Min(d => d.Mtu);
    }

    /// <inheritdoc />
    public override LeaseAttributes LeaseAttributes { get; }

    /// <inheritdoc />
    public override int Mtu { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> DeviceNames => [.. Devices.Select(d => d.Name)];

    /// <inheritdoc />
    public string OverlayFailureCauses =>
        $"the vxlan UDP port ({(_config.Port == 0 ? 8472 : _config.Port)}) filtered between the nodes, an MTU mismatch on the path, or a missing or stale neighbour/FDB entry";

    internal IEnumerable<VxlanDevice> Devices => new[] { _v4, _v6 }.OfType<VxlanDevice>();

    /// <inheritdoc />
    protected override NetlinkNotificationGroups NotificationGroups => NetlinkNotificationGroups.Link | NetlinkNotificationGroups.Route;

    /// <inheritdoc />
    public override async ValueTask ConfigureLeaseAsync(Lease ownLease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ownLease);
        await KernelGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            OwnLease = ownLease;
            foreach (VxlanDevice device in Devices)
            {
                await ConfigureDeviceAsync(device, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            KernelGate.Release();
        }
    }

    private async ValueTask ConfigureDeviceAsync(VxlanDevice device, CancellationToken cancellationToken)
    {
        bool v4 = device.Family == AddressFamily.InterNetwork;
        IPNetwork? ownSubnet = v4 ? OwnLease?.Subnet : OwnLease?.IPv6Subnet;
        if (ownSubnet is { } subnet)
        {
            await device.ConfigureAsync(Netlink, subnet, v4 ? _networkConfig.Network : _networkConfig.IPv6Network, Logger, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await Netlink.SetLinkUpAsync(device.Index, up: true, cancellationToken).ConfigureAwait(false);
        }

        if (!v4)
        {
            await DisableRouterAdvertisementsAsync(_sysctl, device, Logger, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>flannel sets accept_ra=0 on the v6 device and ignores failures; so do we, but we log them.</summary>
    internal static async ValueTask DisableRouterAdvertisementsAsync(ISysctl? sysctl, VxlanDevice device, ILogger logger, CancellationToken cancellationToken)
    {
        if (sysctl is null)
        {
            LogSysctlFailed(logger, device.Name, "no ISysctl is registered for the node's namespace");
            return;
        }

        try
        {
            await sysctl.WriteAsync($"net/ipv6/conf/{device.Name}/accept_ra", "0", cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NetlinkException)
        {
            LogSysctlFailed(logger, device.Name, ex.Message);
        }
    }

    /// <summary>
    /// The vxlan rules for a remote lease, checked before it is programmed: for each family this node runs, a
    /// unicast non-zero VtepMAC and our VNI. Leases of other backend types are left to <see cref="ReconcilingNetwork.IsForThisBackend"/>.
    /// </summary>
    public LeaseRejection? Check(Lease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        if (!string.Equals(lease.Attributes.BackendType, VxlanBackend.TypeName, StringComparison.Ordinal))
        {
            return null;
        }

        if (_v4 is not null && lease.Subnet is not null
            && VxlanBackendData.Check(lease.Attributes.BackendData, "BackendData", _config.Vni) is { } rejection)
        {
            return rejection;
        }

        return _v6 is not null && lease.IPv6Subnet is not null
            ? VxlanBackendData.Check(lease.Attributes.BackendV6Data, "BackendV6Data", _config.Vni)
            : null;
    }

    /// <inheritdoc />
    protected override string? ResyncReasonFor(NetlinkNotification notification)
    {
        ArgumentNullException.ThrowIfNull(notification);
        switch (notification.Kind)
        {
            case NetlinkNotificationKind.LinkDeleted when notification.Link is { } link && Devices.Any(d => d.Index == link.Index || d.Name == link.Name):
                LogDeviceDeleted(Logger, link.Name);
                return "device-deleted";
            case NetlinkNotificationKind.LinkAddedOrChanged when notification.Link is { IsUp: false } link && Devices.Any(d => d.Index == link.Index):
                return "device-down";
            case NetlinkNotificationKind.RouteDeleted when notification.Route is { } route
                && route.Protocol == RouteDefaults.ProtocolFlannel && IsDesiredSubnet(route.Destination):
                return "route-deleted";
            default:
                return base.ResyncReasonFor(notification);
        }
    }

    /// <inheritdoc />
    protected override async ValueTask PrepareReconcileAsync(CancellationToken cancellationToken)
    {
        if (_config.DirectRouting)
        {
            // Whether a peer is on-link in the underlay (a direct route instead of the tunnel) follows the underlay's
            // routes, which change without a lease event: decide again for every peer.
            InvalidateDesiredState();
        }

        foreach (VxlanDevice device in Devices)
        {
            LinkInfo? link = await Netlink.GetLinkAsync(device.Name, cancellationToken).ConfigureAwait(false);
            bool healthy = link is { Kind: "vxlan", IsUp: true } && link.Index == device.Index && link.Address == device.VtepMac;
            if (healthy)
            {
                continue;
            }

            // Deleted, replaced, set down or re-MACed behind our back. The kernel has flushed (or will route
            // nothing through) the peers' objects; the dump that follows sees them missing and replays them all.
            if (link is null)
            {
                Metrics.DeviceRecreated();
                LogRecreatingDevice(Logger, device.Name);
            }
            else
            {
                LogRepairingDevice(Logger, device.Name);
            }

            await device.EnsureAsync(Netlink, Logger, cancellationToken).ConfigureAwait(false);
            await ConfigureDeviceAsync(device, cancellationToken).ConfigureAwait(false);
            InvalidateDesiredState(); // a recreated device has a new interface index, which every peer's objects name
        }
    }

    /// <inheritdoc />
    protected override async ValueTask<IReadOnlyList<StateObject>> DumpOwnedAsync(CancellationToken cancellationToken)
    {
        var owned = new List<StateObject>();
        HashSet<uint> ourNexthops = await DumpNexthopsAsync(owned, cancellationToken).ConfigureAwait(false);
        foreach (VxlanDevice device in Devices)
        {
            IPNetwork? cluster = device.Family == AddressFamily.InterNetwork ? _networkConfig.Network : _networkConfig.IPv6Network;
            IPNetwork? ownSubnet = device.Family == AddressFamily.InterNetwork ? OwnLease?.Subnet : OwnLease?.IPv6Subnet;
            var filter = new RouteFilter { Family = device.Family, Table = RouteDefaults.MainTable, Protocol = RouteDefaults.ProtocolFlannel };
            foreach (RouteInfo route in await Netlink.ListRoutesAsync(filter, cancellationToken).ConfigureAwait(false))
            {
                // Every route of our protocol through our device is ours, wherever it points (a peer outside the
                // network, programmed before admission existed or before Network changed, is garbage too). A
                // DirectRouting route leaves through the shared underlay device: there only routes inside our
                // cluster network are ours, so another Flannel.NET daemon with another network keeps its routes.
                bool onOurDevice = route.LinkIndex == device.Index || (route.NexthopId is { } id && ourNexthops.Contains(id));
                if (route.Destination != ownSubnet && (onOurDevice || cluster is not { } net || Contains(net, route.Destination)))
                {
                    owned.Add(KernelObject.ForObservedRoute(route));
                }
            }

            foreach (NeighborInfo neighbor in await Netlink.ListNeighborsAsync(device.Index, device.Family, cancellationToken).ConfigureAwait(false))
            {
                if (neighbor.IsPermanent)
                {
                    owned.Add(KernelObject.ForNeighbor(
                        new NeighborSpec { LinkIndex = device.Index, Address = neighbor.Address, LinkLayerAddress = neighbor.LinkLayerAddress ?? MacAddress.Zero },
                        isPermanent: true,
                        owner: null));
                }
            }

            foreach (FdbEntryInfo entry in await Netlink.ListFdbEntriesAsync(device.Index, cancellationToken).ConfigureAwait(false))
            {
                if (entry.IsPermanent && entry.Destination is { } destination && (entry.Flags & NeighborFlags.Self) != 0)
                {
                    owned.Add(KernelObject.ForFdbEntry(
                        new FdbEntrySpec { LinkIndex = device.Index, MacAddress = entry.MacAddress, Destination = destination },
                        isPermanent: true,
                        owner: null));
                }
            }
        }

        return owned;
    }

    /// <summary>Adds our nexthop objects to <paramref name="owned"/> and returns their ids.</summary>
    private async ValueTask<HashSet<uint>> DumpNexthopsAsync(List<StateObject> owned, CancellationToken cancellationToken)
    {
        var ours = new HashSet<uint>();
        IReadOnlyList<NexthopInfo> nexthops;
        try
        {
            nexthops = await Netlink.ListNexthopsAsync(protocol: null, cancellationToken).ConfigureAwait(false);
        }
        catch (NetlinkException) when (_routeMode == VxlanRouteMode.Classic)
        {
            return ours; // a kernel without nexthop objects; classic mode needs none
        }

        int[] ourLinks = Devices.Select(d => d.Index).ToArray();
        _nexthopIds.Observe(nexthops, ourLinks);
        foreach (NexthopInfo nexthop in nexthops)
        {
            // Deleting one of these also deletes the routes through it, which is why only ours are listed.
            if (nexthop.Protocol == RouteDefaults.ProtocolFlannel && nexthop.LinkIndex is { } link && ourLinks.Contains(link) && nexthop.Gateway is { } gateway)
            {
                ours.Add(nexthop.Id);
                owned.Add(KernelObject.ForNexthop(
                    new NexthopSpec { Id = nexthop.Id, Gateway = gateway, LinkIndex = link, OnLink = nexthop.OnLink },
                    owner: null));
            }
        }

        return ours;
    }

    /// <inheritdoc />
    protected override async ValueTask<IReadOnlyList<StateObject>> BuildDesiredAsync(Lease lease, string owner, CancellationToken cancellationToken)
    {
        var objects = new List<StateObject>(3);
        if (_v4 is not null && lease.Subnet is { } subnet)
        {
            MacAddress mac = VxlanBackendData.ParseVtepMac(lease.Attributes.BackendData, "BackendData");
            IPAddress publicIP = lease.Attributes.PublicIP;
            if (publicIP.AddressFamily != AddressFamily.InterNetwork || publicIP.Equals(IPAddress.Any))
            {
                throw new FormatException($"PublicIP '{publicIP}' is not a usable IPv4 tunnel endpoint");
            }

            await AddPeerAsync(_v4, subnet, mac, publicIP, owner, objects, cancellationToken).ConfigureAwait(false);
        }

        if (_v6 is not null && lease.IPv6Subnet is { } subnet6)
        {
            MacAddress mac = VxlanBackendData.ParseVtepMac(lease.Attributes.BackendV6Data, "BackendV6Data");
            IPAddress publicIP = lease.Attributes.PublicIPv6
                ?? throw new FormatException("PublicIPv6 is missing, so the peer has no IPv6 tunnel endpoint");
            await AddPeerAsync(_v6, subnet6, mac, publicIP, owner, objects, cancellationToken).ConfigureAwait(false);
        }

        return objects;
    }

    private async ValueTask AddPeerAsync(VxlanDevice device, IPNetwork subnet, MacAddress mac, IPAddress publicIP, string owner, List<StateObject> objects, CancellationToken cancellationToken)
    {
        if (_config.DirectRouting && await IsOnLinkInUnderlayAsync(device, publicIP, cancellationToken).ConfigureAwait(false))
        {
            // `ip route replace 10.244.2.0/24 via <PublicIP>`: the kernel picks the underlay device.
            objects.Add(KernelObject.ForRoute(
                new RouteSpec { Destination = subnet, Gateway = publicIP, Protocol = RouteDefaults.ProtocolFlannel },
                owner));
            return;
        }

        IPAddress gateway = subnet.BaseAddress;
        objects.Add(KernelObject.ForNeighbor(new NeighborSpec { LinkIndex = device.Index, Address = gateway, LinkLayerAddress = mac }, isPermanent: true, owner));
        objects.Add(KernelObject.ForFdbEntry(new FdbEntrySpec { LinkIndex = device.Index, MacAddress = mac, Destination = publicIP }, isPermanent: true, owner));
        if (_routeMode == VxlanRouteMode.NexthopObjects)
        {
            uint id = _nexthopIds.IdFor(gateway);
            objects.Add(KernelObject.ForNexthop(new NexthopSpec { Id = id, Gateway = gateway, LinkIndex = device.Index, OnLink = true }, owner));
            objects.Add(KernelObject.ForRoute(new RouteSpec { Destination = subnet, NexthopId = id, Protocol = RouteDefaults.ProtocolFlannel }, owner));
        }
        else
        {
            objects.Add(KernelObject.ForRoute(
                new RouteSpec { Destination = subnet, Gateway = gateway, LinkIndex = device.Index, OnLink = true, Protocol = RouteDefaults.ProtocolFlannel },
                owner));
        }
    }

    /// <summary>flannel's test: <c>ip route get PublicIP</c> gives a route without a gateway (and not through our own device).</summary>
    private async ValueTask<bool> IsOnLinkInUnderlayAsync(VxlanDevice device, IPAddress publicIP, CancellationToken cancellationToken)
    {
        RouteInfo? route = await Netlink.GetRouteToAsync(publicIP, cancellationToken).ConfigureAwait(false);
        return route is { Gateway: null, Type: RouteType.Unicast } && route.LinkIndex != device.Index;
    }

    private static bool Contains(IPNetwork outer, IPNetwork inner) =>
        inner.BaseAddress.AddressFamily == outer.BaseAddress.AddressFamily
        && inner.PrefixLength >= outer.PrefixLength
        && outer.Contains(inner.BaseAddress);


    [LoggerMessage(EventId = 6011, Level = LogLevel.Warning, Message = "vxlan: device {Device} was deleted; recreating it and replaying every peer")]
    private static partial void LogDeviceDeleted(ILogger logger, string device);

    [LoggerMessage(EventId = 6012, Level = LogLevel.Warning, Message = "vxlan: recreating missing device {Device}")]
    private static partial void LogRecreatingDevice(ILogger logger, string device);

    [LoggerMessage(EventId = 6013, Level = LogLevel.Warning, Message = "vxlan: device {Device} was changed behind our back (replaced, down or new MAC); restoring it")]
    private static partial void LogRepairingDevice(ILogger logger, string device);

    [LoggerMessage(EventId = 6014, Level = LogLevel.Warning, Message = "vxlan: could not set accept_ra=0 on {Device}: {Error}")]
    private static partial void LogSysctlFailed(ILogger logger, string device, string error);
}
