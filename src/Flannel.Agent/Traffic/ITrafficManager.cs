using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Flannel.Agent.Traffic;

/// <summary>
/// The networks the traffic rules are computed from: the cluster networks of the config and this node's lease
/// subnets. A family is handled only when both of its values are set.
/// </summary>
public sealed record TrafficNetworks
{
    /// <summary>The IPv4 cluster network (net-conf.json <c>Network</c>), e.g. 10.244.0.0/16.</summary>
    public IPNetwork? Network { get; init; }

    /// <summary>This node's IPv4 lease subnet in network form, e.g. 10.244.1.0/24.</summary>
    public IPNetwork? Subnet { get; init; }

    /// <summary>The IPv6 cluster network.</summary>
    public IPNetwork? IPv6Network { get; init; }

    /// <summary>This node's IPv6 lease subnet.</summary>
    public IPNetwork? IPv6Subnet { get; init; }

    /// <summary>True when IPv4 rules can be computed.</summary>
    public bool HasIPv4 => Network is not null && Subnet is not null;

    /// <summary>True when IPv6 rules can be computed.</summary>
    public bool HasIPv6 => IPv6Network is not null && IPv6Subnet is not null;
}

/// <summary>Settings shared by both traffic managers.</summary>
public sealed record TrafficManagerOptions
{
    /// <summary>Do not use fully random source ports for masquerading (<c>--ip-masq-fully-random-disable</c>).</summary>
    public bool DisableFullyRandom { get; init; }
}

/// <summary>
/// Installs and keeps flannel's masquerade (<c>--ip-masq</c>) and forward (<c>--iptables-forward-rules</c>)
/// rules, with iptables (flannel's default) or nftables (<c>"EnableNFTables": true</c>).
/// </summary>
/// <remarks>
/// Call order, as flanneld: <see cref="InitializeAsync"/> (removes the other mode's rules), then
/// <see cref="SetupAndEnsureMasqRulesAsync"/> and/or <see cref="SetupAndEnsureForwardRulesAsync"/>, then call
/// <see cref="ResyncAsync"/> periodically (the agent does, every <c>--iptables-resync</c>); dispose after the last call. Rules are replaced atomically (make-before-break: there is never a
/// moment without masquerading) and are left in place on shutdown, as flanneld leaves them.
/// </remarks>
public interface ITrafficManager : IDisposable
{
    /// <summary>Removes the rules of the other mode (iptables chains in nftables mode, the nftables tables in iptables mode).</summary>
    Task InitializeAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Installs the masquerade rules for <paramref name="current"/>; <see cref="ResyncAsync"/> keeps them.
    /// <paramref name="previous"/> (the networks read back from the previous subnet.env) only matters for logging
    /// the recycling of old rules: the old rule set is replaced in the same transaction that installs the new one.
    /// </summary>
    Task SetupAndEnsureMasqRulesAsync(TrafficNetworks current, TrafficNetworks? previous, CancellationToken cancellationToken);

    /// <summary>Installs the forward accept rules for the cluster networks of <paramref name="networks"/> and keeps them.</summary>
    Task SetupAndEnsureForwardRulesAsync(TrafficNetworks networks, CancellationToken cancellationToken);

    /// <summary>
    /// <c>--ip-blackhole-route</c>: keeps a <c>blackhole</c> route for this node's lease subnets (IPv4 and IPv6) in the
    /// main table, re-added by every resync, for setups without the bridge plugin's route.
    /// </summary>
    Task SetupAndEnsureBlackholeRoutesAsync(TrafficNetworks networks, CancellationToken cancellationToken);

    /// <summary>Checks every installed rule set (and blackhole route) once and repairs what is missing or out of order.</summary>
    /// <returns>The number of rule sets that had to be repaired.</returns>
    Task<int> ResyncAsync(CancellationToken cancellationToken);

}

/// <summary>Creates the traffic manager for a mode.</summary>
public static class TrafficManager
{
    /// <summary>Creates an nftables (<paramref name="useNftables"/>) or iptables traffic manager.</summary>
    /// <param name="useNftables">The net-conf.json <c>EnableNFTables</c> value.</param>
    /// <param name="runner">Runs iptables/nft; use <see cref="NetworkNamespaceCommandRunner"/> to manage another namespace.</param>
    /// <param name="options">Resync period and fully-random setting.</param>
    /// <param name="timeProvider">Drives the resync loop.</param>
    /// <param name="logger">Receives what the manager does.</param>
    public static ITrafficManager Create(bool useNftables, ICommandRunner? runner = null, TrafficManagerOptions? options = null,
        TimeProvider? timeProvider = null, ILogger? logger = null)
    {
        runner ??= ProcessCommandRunner.Instance;
        options ??= new TrafficManagerOptions();
        timeProvider ??= TimeProvider.System;
        logger ??= NullLogger.Instance;
        return useNftables
            ? new NftablesTrafficManager(runner, options, timeProvider, logger)
            : new IptablesTrafficManager(runner, options, timeProvider, logger);
    }
}
