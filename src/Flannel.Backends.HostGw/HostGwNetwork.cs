using System.Net;
using System.Net.Sockets;
using Flannel.Reconciliation;
using Flannel.Configuration;
using Flannel.Netlink;
using Flannel.Subnets;
using Microsoft.Extensions.Logging;

namespace Flannel.Backends.HostGw;

// Design note (after flannel's pkg/backend/hostgw and route_network.go): one route per remote host,
// `10.244.2.0/24 via <PublicIP> dev <external interface>`, and nothing else. flannel re-adds missing routes
// every 10 s but never deletes one it does not know, and replaces a differing route by delete-then-add. Here
// the routes are desired state: replaced atomically when they differ, re-added when missing (the kernel
// flushes them when the interface goes down, so a link-up notification triggers a resync at once), and
// deleted when stale, peers that vanished while the agent was down included. Routes carry the Flannel.NET
// route protocol, and only routes with that protocol on the external interface are ever deleted, so routes of
// other programs are never touched. Every such route no peer wants is garbage, also outside the cluster network:
// a hostile lease programmed before admission existed, or a peer of a Network since changed.

/// <summary>The host-gw network on this node.</summary>
internal sealed class HostGwNetwork : ReconcilingNetwork
{
    private readonly NetworkConfig _networkConfig;
    private readonly ExternalInterface _external;

    public HostGwNetwork(
        INetlink netlink,
        TimeProvider timeProvider,
        TimeSpan resyncInterval,
        BackendMetrics metrics,
        ILogger logger,
        NetworkConfig networkConfig,
        ExternalInterface external,
        LeaseAttributes attributes)
        : base(HostGwBackend.TypeName, netlink, timeProvider, resyncInterval, metrics, logger)
    {
        _networkConfig = networkConfig;
        _external = external;
        LeaseAttributes = attributes;
    }

    /// <inheritdoc />
    public override LeaseAttributes LeaseAttributes { get; }

    /// <summary>No encapsulation: pods use the interface's MTU.</summary>
    public override int Mtu => _external.Mtu;

    /// <inheritdoc />
    protected override NetlinkNotificationGroups NotificationGroups => NetlinkNotificationGroups.Link | NetlinkNotificationGroups.Route;

    /// <inheritdoc />
    public override async ValueTask ConfigureLeaseAsync(Lease ownLease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ownLease);
        await KernelGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            OwnLease = ownLease; // nothing to program for our own subnet; it is only kept out of the peers
        }
        finally
        {
            KernelGate.Release();
        }
    }

    /// <inheritdoc />
    protected override string? ResyncReasonFor(NetlinkNotification notification)
    {
        ArgumentNullException.ThrowIfNull(notification);
        return notification.Kind switch
        {
            NetlinkNotificationKind.LinkAddedOrChanged when notification.Link is { IsUp: true } link && link.Index == _external.Index => "interface-up",
            NetlinkNotificationKind.RouteDeleted when notification.Route is { } route
                && route.Protocol == RouteDefaults.ProtocolFlannel && IsDesiredSubnet(route.Destination) => "route-deleted",
            _ => base.ResyncReasonFor(notification),
        };
    }

    /// <inheritdoc />
    protected override ValueTask<IReadOnlyList<StateObject>> BuildDesiredAsync(Lease lease, string owner, CancellationToken cancellationToken)
    {
        var routes = new List<StateObject>(2);
        if (_networkConfig.EnableIPv4 && lease.Subnet is { } subnet)
        {
            IPAddress publicIP = lease.Attributes.PublicIP;
            if (publicIP.AddressFamily != AddressFamily.InterNetwork || publicIP.Equals(IPAddress.Any))
            {
                throw new FormatException($"PublicIP '{publicIP}' is not a usable IPv4 next hop");
            }

            routes.Add(RouteTo(subnet, publicIP, owner));
        }

        if (_networkConfig.EnableIPv6 && lease.IPv6Subnet is { } subnet6)
        {
            IPAddress publicIPv6 = lease.Attributes.PublicIPv6
                ?? throw new FormatException("PublicIPv6 is missing, so the peer has no IPv6 next hop");
            routes.Add(RouteTo(subnet6, publicIPv6, owner));
        }

        return ValueTask.FromResult<IReadOnlyList<StateObject>>(routes);
    }

    private KernelObject RouteTo(IPNetwork subnet, IPAddress gateway, string owner) => KernelObject.ForRoute(
        new RouteSpec
        {
            Destination = subnet,
            Gateway = gateway,
            LinkIndex = _external.Index,
            Protocol = RouteDefaults.ProtocolFlannel,
        },
        owner);

    /// <inheritdoc />
    protected override async ValueTask<IReadOnlyList<StateObject>> DumpOwnedAsync(CancellationToken cancellationToken)
    {
        var owned = new List<StateObject>();
        foreach ((bool enabled, AddressFamily family, IPNetwork? own) in new[]
        {
            (_networkConfig.EnableIPv4, AddressFamily.InterNetwork, OwnLease?.Subnet),
            (_networkConfig.EnableIPv6, AddressFamily.InterNetworkV6, OwnLease?.IPv6Subnet),
        })
        {
            if (!enabled)
            {
                continue;
            }

            var filter = new RouteFilter { Family = family, Table = RouteDefaults.MainTable, Protocol = RouteDefaults.ProtocolFlannel, LinkIndex = _external.Index };
            foreach (RouteInfo route in await Netlink.ListRoutesAsync(filter, cancellationToken).ConfigureAwait(false))
            {
                if (route.LinkIndex == _external.Index && route.Destination != own)
                {
                    owned.Add(KernelObject.ForObservedRoute(route));
                }
            }
        }

        return owned;
    }
}
