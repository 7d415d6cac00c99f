using Flannel.Configuration;
using Flannel.Subnets;

namespace Flannel.Backends;

/// <summary>
/// A flannel backend (vxlan, host-gw). It prepares the node for the network, then programs the kernel for
/// every remote lease. Backends never talk to a subnet store: the agent acquires the lease and feeds
/// lease events in, which keeps them testable against a fake <c>INetlink</c>.
/// </summary>
public interface IBackend
{
    /// <summary>The backend type as written in net-conf.json, lower-case: <c>vxlan</c>, <c>host-gw</c>.</summary>
    string BackendType { get; }

    /// <summary>
    /// Prepares the node (for vxlan: creates or reuses the device, which fixes the VtepMAC) and returns the
    /// network, which reports the lease attributes to publish and the MTU.
    /// </summary>
    ValueTask<INetwork> RegisterNetworkAsync(BackendContext context, CancellationToken cancellationToken);
}

/// <summary>A backend's network on this node, between registration and shutdown.</summary>
public interface INetwork
{
    /// <summary>The attributes this node publishes with its lease (backend type and data, public IPs).</summary>
    LeaseAttributes LeaseAttributes { get; }

    /// <summary>The MTU pods must use (FLANNEL_MTU): the underlay MTU less the encapsulation overhead.</summary>
    int Mtu { get; }

    /// <summary>
    /// Applies this node's own lease once it is acquired, and again if it changes (for vxlan: the /32
    /// address on the device).
    /// </summary>
    ValueTask ConfigureLeaseAsync(Lease ownLease, CancellationToken cancellationToken);

    /// <summary>
    /// Programs remote leases until cancelled. Each item is a batch of events for other nodes (the first is
    /// the initial snapshot). Also reconciles kernel state periodically and repairs drift. Shutting down leaves
    /// the data plane intact.
    /// </summary>
    /// <remarks>
    /// The agent owns the remote-lease set and guarantees what arrives: the node's own lease never appears; an
    /// <see cref="LeaseEventType.Added"/> for a lease already added means its attributes changed (renewals are not
    /// delivered); a <see cref="LeaseEventType.Removed"/> carries the attributes last added; only leases that passed
    /// admission (<see cref="ILeaseAdmission"/>) appear. A backend does not filter any of these again. A backend
    /// asks for the next batch only when it has programmed the previous one: the agent reads its store watch at that
    /// pace, and its <c>flannel.lease_events.apply_duration</c> is the time each batch took.
    /// </remarks>
    Task RunAsync(IAsyncEnumerable<IReadOnlyList<LeaseEvent>> leaseEvents, CancellationToken cancellationToken);
}

/// <summary>Everything a backend needs to register its network.</summary>
public sealed record BackendContext
{
    /// <summary>The validated network configuration, including the raw <c>Backend</c> object.</summary>
    public required NetworkConfig Config { get; init; }

    /// <summary>The interface flannel sends encapsulated or routed traffic through, and the public addresses.</summary>
    public required ExternalInterface ExternalInterface { get; init; }

    /// <summary>The attributes this node published before a restart, if the store remembers them.</summary>
    public LeaseAttributes? PreviousAttributes { get; init; }
}
