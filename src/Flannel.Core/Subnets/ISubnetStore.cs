using System.Net;
using Flannel.Configuration;

namespace Flannel.Subnets;

/// <summary>
/// Where subnet leases live: etcd (flannel's key layout), the Kubernetes API (node podCIDR and
/// annotations), or the embedded in-memory store. A store is bound to one node.
/// </summary>
/// <remarks>
/// The interface is deliberately narrow (flannel's <c>Manager</c> has ten methods): read the config,
/// acquire, renew, keep and revoke this node's lease, and watch everyone else's.
/// </remarks>
public interface ISubnetStore
{
    /// <summary>
    /// Reads and validates the network configuration (etcd: <c>&lt;prefix&gt;/config</c>; kube: net-conf.json).
    /// Throws <see cref="NetworkConfigException"/> when it is invalid.
    /// </summary>
    ValueTask<NetworkConfig> GetNetworkConfigAsync(CancellationToken cancellationToken);

    /// <summary>
    /// What the store remembers about this node from before a restart: an overriding public IP
    /// (kube: the <c>node-public-ip</c> annotations) and the attributes it last published (so that a VXLAN
    /// VtepMAC survives restarts). <paramref name="publicIP"/> identifies the node in stores that key leases
    /// by subnet (etcd); it may be null when not yet known.
    /// </summary>
    ValueTask<NodeHints> GetNodeHintsAsync(IPAddress? publicIP, CancellationToken cancellationToken);

    /// <summary>
    /// Acquires this node's lease in flannel's order: reuse the lease whose PublicIP matches, else the
    /// previous subnet, else a random free subnet. A lost creation race is retried, never fatal.
    /// </summary>
    ValueTask<Lease> AcquireLeaseAsync(LeaseRequest request, CancellationToken cancellationToken);

    /// <summary>Extends this node's lease and returns it with its new expiration.</summary>
    ValueTask<Lease> RenewLeaseAsync(Lease lease, CancellationToken cancellationToken);

    /// <summary>
    /// Keeps this node's lease alive until cancelled (flannel's <c>CompleteLease</c>): renews it as the store
    /// requires, notices when it is deleted or expires, and re-acquires it (keeping the subnet if it is
    /// still free). Yields the lease each time it changes; a yielded lease with another subnet means the
    /// agent must reprogram the node. The Kubernetes store also marks the node's network available here.
    /// </summary>
    IAsyncEnumerable<Lease> KeepLeaseAsync(Lease lease, CancellationToken cancellationToken);

    /// <summary>Gives this node's lease back (it stops existing for peers). Not called on a normal shutdown.</summary>
    ValueTask RevokeLeaseAsync(Lease lease, CancellationToken cancellationToken);

    /// <summary>
    /// Watches every lease in the network. The first item is a snapshot; later items are events, or a new
    /// snapshot after the store had to re-list (compaction, expired watch). The stream ends only when
    /// <paramref name="cancellationToken"/> is cancelled; transient failures are retried with backoff.
    /// </summary>
    IAsyncEnumerable<LeaseWatchResult> WatchLeasesAsync(CancellationToken cancellationToken);
}

/// <summary>What this node asks the store for when acquiring its lease.</summary>
public sealed record LeaseRequest
{
    /// <summary>The attributes to publish (public IPs, backend type and data).</summary>
    public required LeaseAttributes Attributes { get; init; }

    /// <summary>The IPv4 subnet this node had before (from subnet.env), tried after reuse-by-PublicIP.</summary>
    public IPNetwork? PreviousSubnet { get; init; }

    /// <summary>The IPv6 subnet this node had before (from subnet.env).</summary>
    public IPNetwork? PreviousIPv6Subnet { get; init; }
}

/// <summary>What a store remembers about this node.</summary>
public sealed record NodeHints
{
    /// <summary>No hints.</summary>
    public static NodeHints None { get; } = new();

    /// <summary>A public IPv4 address to use as if given by <c>--public-ip</c>.</summary>
    public IPAddress? PublicIP { get; init; }

    /// <summary>A public IPv6 address to use as if given by <c>--public-ipv6</c>.</summary>
    public IPAddress? PublicIPv6 { get; init; }

    /// <summary>The attributes this node last published, if the store has them.</summary>
    public LeaseAttributes? PreviousAttributes { get; init; }
}
