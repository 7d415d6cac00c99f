using Microsoft.Extensions.Logging;

namespace Flannel.Netlink;

/// <summary>Log messages of the rtnetlink stack. Event ids 1800–1819 belong to Flannel.Core's netlink area.</summary>
internal static partial class NetlinkLog
{
    [LoggerMessage(EventId = 1800, Level = LogLevel.Warning, Message = "\"{Device}\" already exists with incompatible configuration: {Reason}; recreating device")]
    public static partial void RecreatingIncompatibleVxlan(this ILogger logger, string device, string reason);

    [LoggerMessage(EventId = 1801, Level = LogLevel.Debug, Message = "Reusing existing vxlan device \"{Device}\" (index {Index})")]
    public static partial void ReusingVxlan(this ILogger logger, string device, int index);

    [LoggerMessage(EventId = 1802, Level = LogLevel.Information, Message = "Removing address {Address}/{PrefixLength} from link {Index}: it is inside {Within} and is not the wanted {Wanted}")]
    public static partial void RemovingStaleAddress(this ILogger logger, System.Net.IPAddress address, int prefixLength, int index, System.Net.IPNetwork within, System.Net.IPNetwork wanted);

    [LoggerMessage(EventId = 1803, Level = LogLevel.Warning, Message = "Netlink notifications were dropped by the kernel (ENOBUFS) in namespace {Namespace}; subscribers must resynchronise")]
    public static partial void NotificationsOverrun(this ILogger logger, string @namespace);

    [LoggerMessage(EventId = 1804, Level = LogLevel.Debug, Message = "Applied a netlink batch of {Count} operations in {Chunks} sendmsg calls; {Failed} failed")]
    public static partial void BatchApplied(this ILogger logger, int count, int chunks, int failed);
}
