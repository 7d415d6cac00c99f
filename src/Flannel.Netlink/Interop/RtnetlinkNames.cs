using System.Globalization;

namespace Flannel.Netlink.Interop;

/// <summary>Kernel names of message types, for error messages and logs.</summary>
internal static class RtnetlinkNames
{
    /// <summary>The uapi name of an nlmsg_type, e.g. <c>RTM_NEWROUTE</c>.</summary>
    public static string MessageType(ushort type) => type switch
    {
        NetlinkHeader.NLMSG_NOOP => "NLMSG_NOOP",
        NetlinkHeader.NLMSG_ERROR => "NLMSG_ERROR",
        NetlinkHeader.NLMSG_DONE => "NLMSG_DONE",
        NetlinkHeader.NLMSG_OVERRUN => "NLMSG_OVERRUN",
        RtnetlinkConstants.RTM_NEWLINK => "RTM_NEWLINK",
        RtnetlinkConstants.RTM_DELLINK => "RTM_DELLINK",
        RtnetlinkConstants.RTM_GETLINK => "RTM_GETLINK",
        RtnetlinkConstants.RTM_SETLINK => "RTM_SETLINK",
        RtnetlinkConstants.RTM_NEWADDR => "RTM_NEWADDR",
        RtnetlinkConstants.RTM_DELADDR => "RTM_DELADDR",
        RtnetlinkConstants.RTM_GETADDR => "RTM_GETADDR",
        RtnetlinkConstants.RTM_NEWROUTE => "RTM_NEWROUTE",
        RtnetlinkConstants.RTM_DELROUTE => "RTM_DELROUTE",
        RtnetlinkConstants.RTM_GETROUTE => "RTM_GETROUTE",
        RtnetlinkConstants.RTM_NEWNEIGH => "RTM_NEWNEIGH",
        RtnetlinkConstants.RTM_DELNEIGH => "RTM_DELNEIGH",
        RtnetlinkConstants.RTM_GETNEIGH => "RTM_GETNEIGH",
        RtnetlinkConstants.RTM_NEWNEXTHOP => "RTM_NEWNEXTHOP",
        RtnetlinkConstants.RTM_DELNEXTHOP => "RTM_DELNEXTHOP",
        RtnetlinkConstants.RTM_GETNEXTHOP => "RTM_GETNEXTHOP",
        _ => "nlmsg_type " + type.ToString(CultureInfo.InvariantCulture),
    };
}
