using System.Net;
using Flannel.Configuration;
using Flannel.Subnets;

namespace Flannel.Agent;

/// <summary>
/// The agent's seam to the masquerade and forward rules (iptables or nftables). The agent calls
/// <see cref="EnsureAsync"/> once at startup (before subnet.env is written), again whenever its lease changes, and
/// every <see cref="FlannelAgentOptions.IptablesResync"/>; each call must converge the rules make-before-break.
/// </summary>
public interface IAgentTrafficRules
{
    /// <summary>Installs or repairs the rules for <paramref name="request"/>.</summary>
    ValueTask EnsureAsync(TrafficRulesRequest request, CancellationToken cancellationToken);
}

/// <summary>What the rules must say, and what they said before (to recycle rules for an old network or subnet).</summary>
public sealed record TrafficRulesRequest
{
    /// <summary>The network configuration (cluster networks, <c>EnableNFTables</c>).</summary>
    public required NetworkConfig Config { get; init; }

    /// <summary>This node's lease (its pod subnets).</summary>
    public required Lease Lease { get; init; }

    /// <summary><c>--ip-masq</c>.</summary>
    public bool IpMasq { get; init; }

    /// <summary>Add <c>--random-fully</c> (not <c>--ip-masq-fully-random-disable</c>).</summary>
    public bool RandomFully { get; init; } = true;

    /// <summary><c>--iptables-forward-rules</c>.</summary>
    public bool ForwardRules { get; init; } = true;

    /// <summary><c>--ip-blackhole-route</c>: keep a blackhole route for the lease subnets.</summary>
    public bool BlackholeRoute { get; init; }

    /// <summary>The previous IPv4 cluster network (subnet.env before this run, or before a lease change).</summary>
    public IPNetwork? PreviousNetwork { get; init; }

    /// <summary>The previous IPv4 pod subnet.</summary>
    public IPNetwork? PreviousSubnet { get; init; }

    /// <summary>The previous IPv6 cluster network.</summary>
    public IPNetwork? PreviousIPv6Network { get; init; }

    /// <summary>The previous IPv6 pod subnet.</summary>
    public IPNetwork? PreviousIPv6Subnet { get; init; }

    /// <summary>True for a periodic resync, false for the startup or lease-change install.</summary>
    public bool IsResync { get; init; }
}
