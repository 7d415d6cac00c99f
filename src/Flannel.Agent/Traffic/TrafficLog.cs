using System.Net;
using Microsoft.Extensions.Logging;

namespace Flannel.Agent.Traffic;

/// <summary>Log messages of the traffic managers (event ids 1700–1749).</summary>
internal static partial class TrafficLog
{
    [LoggerMessage(EventId = 1700, Level = LogLevel.Information, Message = "Starting flannel in {Mode} mode")]
    public static partial void StartingMode(ILogger logger, string mode);

    [LoggerMessage(EventId = 1701, Level = LogLevel.Information, Message = "Removed the nftables tables of the other mode: {Tables}")]
    public static partial void NftablesTablesRemoved(ILogger logger, IEnumerable<string> tables);

    [LoggerMessage(EventId = 1710, Level = LogLevel.Information, Message = "Removed the iptables chain of the other mode: {Family} {Table} {Chain}")]
    public static partial void IptablesChainRemoved(ILogger logger, string family, string table, string chain);

    [LoggerMessage(EventId = 1702, Level = LogLevel.Debug, Message = "Could not clean up the {Mode} rules of the other mode: {Reason}")]
    public static partial void OtherModeCleanupSkipped(ILogger logger, string mode, string reason);

    [LoggerMessage(EventId = 1703, Level = LogLevel.Information,
        Message = "Current network or subnet ({Network}, {Subnet}) is not equal to previous one ({PreviousNetwork}, {PreviousSubnet}), the old rules are replaced")]
    public static partial void RecyclingRules(ILogger logger, IPNetwork? network, IPNetwork? subnet, IPNetwork? previousNetwork, IPNetwork? previousSubnet);

    [LoggerMessage(EventId = 1704, Level = LogLevel.Debug, Message = "Running {Program} with:\n{Payload}")]
    public static partial void ApplyingRestore(ILogger logger, string program, string payload);

    [LoggerMessage(EventId = 1705, Level = LogLevel.Information, Message = "{Family} {Table} {Chain} already holds the desired rules; left untouched")]
    public static partial void RulesAlreadyInPlace(ILogger logger, string family, string table, string chain);

    [LoggerMessage(EventId = 1706, Level = LogLevel.Warning, Message = "Rules were missing or out of order; re-applied {Chain}")]
    public static partial void RulesRepaired(ILogger logger, string chain);

    [LoggerMessage(EventId = 1707, Level = LogLevel.Error, Message = "Failed to ensure the traffic rules; retrying at the next resync")]
    public static partial void ResyncFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1708, Level = LogLevel.Warning,
        Message = "{Family} {Chain}: iptables prints the rules differently from flannel's text; expecting its own spelling from now on: {Observed}")]
    public static partial void RulesPrintedDifferently(ILogger logger, string family, string chain, string observed);

    [LoggerMessage(EventId = 1709, Level = LogLevel.Warning, Message = "nftables: masquerade fully-random is unsupported ({Reason}); using plain masquerade")]
    public static partial void FullyRandomUnsupported(ILogger logger, string reason);
}
