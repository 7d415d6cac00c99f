using Microsoft.Extensions.Logging;

namespace Flannel.Agent;

// Event ids 7000-7099: the agent.
public sealed partial class FlannelAgent
{
    [LoggerMessage(EventId = 7000, Level = LogLevel.Information, Message = "[{Agent}] Network config: Network={Network} IPv6Network={IPv6Network} Backend={Backend}")]
    private static partial void LogConfig(ILogger logger, string agent, System.Net.IPNetwork? network, System.Net.IPNetwork? ipv6Network, string backend);

    [LoggerMessage(EventId = 7001, Level = LogLevel.Warning, Message = "[{Agent}] no subnet found for key: FLANNEL_SUBNET in file: {SubnetFile} ({Problems})")]
    private static partial void LogNoPreviousSubnetFile(ILogger logger, string agent, string subnetFile, string problems);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Information, Message = "[{Agent}] Previous subnet.env {SubnetFile} had subnet {Subnet}; asking the store to reuse it")]
    private static partial void LogPreviousSubnetFile(ILogger logger, string agent, string subnetFile, System.Net.IPNetwork? subnet);

    [LoggerMessage(EventId = 7003, Level = LogLevel.Warning, Message = "[{Agent}] Cannot read the previous subnet file {SubnetFile}; starting without it")]
    private static partial void LogSubnetFileUnreadable(ILogger logger, string agent, string subnetFile, Exception exception);

    [LoggerMessage(EventId = 7004, Level = LogLevel.Information, Message = "[{Agent}] The store gives this node public IP {PublicIP} / {PublicIPv6} (node-public-ip); it overrides the interface address")]
    private static partial void LogPublicIPHint(ILogger logger, string agent, System.Net.IPAddress? publicIP, System.Net.IPAddress? publicIPv6);

    [LoggerMessage(EventId = 7005, Level = LogLevel.Information, Message = "[{Agent}] Using interface {Interface} (address {Address}, public IP {PublicIP}, MTU {Mtu}) because {Reason}")]
    private static partial void LogInterfaceChosen(ILogger logger, string agent, string @interface, System.Net.IPAddress? address, System.Net.IPAddress? publicIP, int mtu, string reason);

    [LoggerMessage(EventId = 7006, Level = LogLevel.Information, Message = "[{Agent}] Acquired lease {Subnet} (expires {Expiration}; previous subnet reused: {Reused})")]
    private static partial void LogLeaseAcquired(ILogger logger, string agent, string subnet, DateTimeOffset? expiration, bool reused);

    [LoggerMessage(EventId = 7007, Level = LogLevel.Information, Message = "[{Agent}] Wrote {SubnetFile}; ready after {Elapsed}")]
    private static partial void LogReady(ILogger logger, string agent, string subnetFile, TimeSpan elapsed);

    [LoggerMessage(EventId = 7008, Level = LogLevel.Warning, Message = "[{Agent}] No traffic rule manager is registered: masquerade and forward rules and the blackhole route are not managed by this agent")]
    private static partial void LogNoTrafficRules(ILogger logger, string agent);

    [LoggerMessage(EventId = 7009, Level = LogLevel.Warning, Message = "[{Agent}] Traffic rule resync failed; retrying at the next period")]
    private static partial void LogResyncFailed(ILogger logger, string agent, Exception exception);

    [LoggerMessage(EventId = 7010, Level = LogLevel.Warning, Message = "[{Agent}] The store stopped keeping the lease; restarting")]
    private static partial void LogKeepLeaseEnded(ILogger logger, string agent);

    [LoggerMessage(EventId = 7011, Level = LogLevel.Error, Message = "[{Agent}] Keeping the lease failed; retrying in {DelaySeconds} s")]
    private static partial void LogKeepLeaseFailed(ILogger logger, string agent, double delaySeconds, Exception exception);

    [LoggerMessage(EventId = 7012, Level = LogLevel.Debug, Message = "[{Agent}] Lease {Subnet} renewed until {Expiration}")]
    private static partial void LogLeaseRenewed(ILogger logger, string agent, string subnet, DateTimeOffset? expiration);

    [LoggerMessage(EventId = 7013, Level = LogLevel.Error, Message = "[{Agent}] THIS NODE'S LEASE CHANGED from {OldSubnet} to {NewSubnet} (it was lost and re-acquired); reprogramming the node. Pods keep their old addresses until restarted.")]
    private static partial void LogLeaseChanged(ILogger logger, string agent, string oldSubnet, string newSubnet);

    [LoggerMessage(EventId = 7014, Level = LogLevel.Warning, Message = "[{Agent}] The lease watch failed; not ready; reconnecting in {DelaySeconds} s")]
    private static partial void LogWatchFailed(ILogger logger, string agent, double delaySeconds, Exception exception);

    [LoggerMessage(EventId = 7015, Level = LogLevel.Information, Message = "[{Agent}] Lease {Kind}: {Added} added, {Removed} removed; {Peers} peers")]
    private static partial void LogLeaseBatchCore(ILogger logger, string agent, string kind, int added, int removed, int peers);

    [LoggerMessage(EventId = 7016, Level = LogLevel.Warning, Message = "[{Agent}] Failed to {What} ({Error}); retrying in {DelaySeconds} s")]
    private static partial void LogStoreRetry(ILogger logger, string agent, string what, double delaySeconds, string error, Exception exception);

    [LoggerMessage(EventId = 7017, Level = LogLevel.Critical, Message = "[{Agent}] The agent failed and stopped")]
    private static partial void LogFatal(ILogger logger, string agent, Exception exception);

    [LoggerMessage(EventId = 7018, Level = LogLevel.Information, Message = "[{Agent}] Stopped; the data plane (device, routes, rules, subnet.env, lease) is left in place")]
    private static partial void LogStopped(ILogger logger, string agent);

    [LoggerMessage(EventId = 7030, Level = LogLevel.Warning, Message = "[{Agent}] Rejecting lease {Lease} ({Rule}): {Reason}; it is not programmed, and checked again when it or what blocks it changes")]
    private static partial void LogLeaseRejected(ILogger logger, string agent, string lease, string rule, string reason);

    private static void LogLeaseBatch(ILogger logger, string agent, bool snapshot, int added, int removed, int peers) =>
        LogLeaseBatchCore(logger, agent, snapshot ? "snapshot" : "events", added, removed, peers);
}
