// Kernel constants with their uapi spellings, so they grep against include/uapi/linux/*.h. This folder is the
// only place in Flannel.NET where kernel names appear; everything above it uses .NET names.
#pragma warning disable CA1707 // Identifiers should not contain underscores: these are the kernel's names.
#pragma warning disable SA1310
#pragma warning disable IDE1006

namespace Flannel.Netlink.Interop;

/// <summary>include/uapi/linux/netlink.h: the netlink envelope.</summary>
internal static class NetlinkHeader
{
    /// <summary>The rtnetlink protocol number for socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE).</summary>
    public const int NETLINK_ROUTE = 0;

    /// <summary>sizeof(struct nlmsghdr).</summary>
    public const int NLMSG_HDRLEN = 16;

    /// <summary>NLMSG_ALIGNTO.</summary>
    public const int NLMSG_ALIGNTO = 4;

    /// <summary>sizeof(struct nlattr).</summary>
    public const int NLA_HDRLEN = 4;

    /// <summary>NLA_ALIGNTO.</summary>
    public const int NLA_ALIGNTO = 4;

    public const ushort NLA_F_NESTED = 1 << 15;
    public const ushort NLA_F_NET_BYTEORDER = 1 << 14;
    public const ushort NLA_TYPE_MASK = unchecked((ushort)~(NLA_F_NESTED | NLA_F_NET_BYTEORDER));

    // nlmsg_type values below 0x10 are control messages.
    public const ushort NLMSG_NOOP = 1;
    public const ushort NLMSG_ERROR = 2;
    public const ushort NLMSG_DONE = 3;
    public const ushort NLMSG_OVERRUN = 4;
    public const ushort NLMSG_MIN_TYPE = 0x10;

    // nlmsg_flags.
    public const ushort NLM_F_REQUEST = 0x01;
    public const ushort NLM_F_MULTI = 0x02;
    public const ushort NLM_F_ACK = 0x04;
    public const ushort NLM_F_ECHO = 0x08;
    public const ushort NLM_F_DUMP_INTR = 0x10;
    public const ushort NLM_F_DUMP_FILTERED = 0x20;

    // Modifiers to GET requests.
    public const ushort NLM_F_ROOT = 0x100;
    public const ushort NLM_F_MATCH = 0x200;
    public const ushort NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;

    // Modifiers to NEW requests.
    public const ushort NLM_F_REPLACE = 0x100;
    public const ushort NLM_F_EXCL = 0x200;
    public const ushort NLM_F_CREATE = 0x400;

    // Flags of an NLMSG_ERROR reply (acknowledgement).
    public const ushort NLM_F_CAPPED = 0x100;
    public const ushort NLM_F_ACK_TLVS = 0x200;

    // enum nlmsgerr_attrs.
    public const ushort NLMSGERR_ATTR_MSG = 1;
    public const ushort NLMSGERR_ATTR_OFFS = 2;

    // Socket options at SOL_NETLINK.
    public const int SOL_NETLINK = 270;
    public const int NETLINK_ADD_MEMBERSHIP = 1;
    public const int NETLINK_DROP_MEMBERSHIP = 2;
    public const int NETLINK_NO_ENOBUFS = 5;
    public const int NETLINK_CAP_ACK = 10;
    public const int NETLINK_EXT_ACK = 11;
    public const int NETLINK_GET_STRICT_CHK = 12;
}

/// <summary>include/uapi/linux/rtnetlink.h: message types, rtmsg values and multicast groups.</summary>
internal static class RtnetlinkConstants
{
    public const ushort RTM_NEWLINK = 16;
    public const ushort RTM_DELLINK = 17;
    public const ushort RTM_GETLINK = 18;
    public const ushort RTM_SETLINK = 19;
    public const ushort RTM_NEWADDR = 20;
    public const ushort RTM_DELADDR = 21;
    public const ushort RTM_GETADDR = 22;
    public const ushort RTM_NEWROUTE = 24;
    public const ushort RTM_DELROUTE = 25;
    public const ushort RTM_GETROUTE = 26;
    public const ushort RTM_NEWNEIGH = 28;
    public const ushort RTM_DELNEIGH = 29;
    public const ushort RTM_GETNEIGH = 30;
    public const ushort RTM_NEWNEXTHOP = 104;
    public const ushort RTM_DELNEXTHOP = 105;
    public const ushort RTM_GETNEXTHOP = 106;

    // rtm_type.
    public const byte RTN_UNSPEC = 0;
    public const byte RTN_UNICAST = 1;
    public const byte RTN_LOCAL = 2;
    public const byte RTN_BLACKHOLE = 6;

    // rtm_protocol.
    public const byte RTPROT_UNSPEC = 0;
    public const byte RTPROT_KERNEL = 2;
    public const byte RTPROT_BOOT = 3;

    // rtm_scope.
    public const byte RT_SCOPE_UNIVERSE = 0;
    public const byte RT_SCOPE_LINK = 253;
    public const byte RT_SCOPE_HOST = 254;
    public const byte RT_SCOPE_NOWHERE = 255;

    // rtm_table: tables above 255 go in RTA_TABLE with rtm_table = RT_TABLE_COMPAT.
    public const byte RT_TABLE_UNSPEC = 0;
    public const byte RT_TABLE_COMPAT = 252;
    public const byte RT_TABLE_MAIN = 254;

    // rtm_flags / rtnh_flags.
    public const uint RTNH_F_ONLINK = 4;

    // enum rtattr_type_t.
    public const ushort RTA_DST = 1;
    public const ushort RTA_SRC = 2;
    public const ushort RTA_IIF = 3;
    public const ushort RTA_OIF = 4;
    public const ushort RTA_GATEWAY = 5;
    public const ushort RTA_PRIORITY = 6;
    public const ushort RTA_PREFSRC = 7;
    public const ushort RTA_TABLE = 15;
    public const ushort RTA_NH_ID = 30;

    // enum rtnetlink_groups.
    public const int RTNLGRP_LINK = 1;
    public const int RTNLGRP_NEIGH = 3;
    public const int RTNLGRP_IPV4_IFADDR = 5;
    public const int RTNLGRP_IPV4_ROUTE = 7;
    public const int RTNLGRP_IPV6_IFADDR = 9;
    public const int RTNLGRP_IPV6_ROUTE = 11;

    /// <summary>sizeof(struct rtmsg).</summary>
    public const int RTMSG_LEN = 12;
}

/// <summary>include/uapi/linux/if_link.h and if.h: links.</summary>
internal static class LinkConstants
{
    /// <summary>sizeof(struct ifinfomsg).</summary>
    public const int IFINFOMSG_LEN = 16;

    public const uint IFF_UP = 0x1;

    public const ushort IFLA_ADDRESS = 1;
    public const ushort IFLA_BROADCAST = 2;
    public const ushort IFLA_IFNAME = 3;
    public const ushort IFLA_MTU = 4;
    public const ushort IFLA_LINK = 5;
    public const ushort IFLA_MASTER = 10;
    public const ushort IFLA_OPERSTATE = 16;
    public const ushort IFLA_LINKINFO = 18;
    public const ushort IFLA_NET_NS_PID = 19;
    public const ushort IFLA_NET_NS_FD = 28;
    public const ushort IFLA_EXT_MASK = 29;

    // enum IFLA_INFO_*.
    public const ushort IFLA_INFO_KIND = 1;
    public const ushort IFLA_INFO_DATA = 2;

    // enum VETH_INFO_*.
    public const ushort VETH_INFO_PEER = 1;

    // enum IFLA_VXLAN_*.
    public const ushort IFLA_VXLAN_ID = 1;
    public const ushort IFLA_VXLAN_GROUP = 2;
    public const ushort IFLA_VXLAN_LINK = 3;
    public const ushort IFLA_VXLAN_LOCAL = 4;
    public const ushort IFLA_VXLAN_TTL = 5;
    public const ushort IFLA_VXLAN_TOS = 6;
    public const ushort IFLA_VXLAN_LEARNING = 7;
    public const ushort IFLA_VXLAN_AGEING = 8;
    public const ushort IFLA_VXLAN_LIMIT = 9;
    public const ushort IFLA_VXLAN_PORT_RANGE = 10;
    public const ushort IFLA_VXLAN_PROXY = 11;
    public const ushort IFLA_VXLAN_RSC = 12;
    public const ushort IFLA_VXLAN_L2MISS = 13;
    public const ushort IFLA_VXLAN_L3MISS = 14;
    public const ushort IFLA_VXLAN_PORT = 15;
    public const ushort IFLA_VXLAN_GROUP6 = 16;
    public const ushort IFLA_VXLAN_LOCAL6 = 17;
    public const ushort IFLA_VXLAN_UDP_CSUM = 18;
    public const ushort IFLA_VXLAN_UDP_ZERO_CSUM6_TX = 19;
    public const ushort IFLA_VXLAN_UDP_ZERO_CSUM6_RX = 20;
    public const ushort IFLA_VXLAN_GBP = 23;

    // RTEXT_FILTER_* for IFLA_EXT_MASK.
    public const uint RTEXT_FILTER_VF = 1;
    public const uint RTEXT_FILTER_SKIP_STATS = 1 << 3;
}

/// <summary>include/uapi/linux/if_addr.h: addresses.</summary>
internal static class AddressConstants
{
    /// <summary>sizeof(struct ifaddrmsg).</summary>
    public const int IFADDRMSG_LEN = 8;

    public const ushort IFA_ADDRESS = 1;
    public const ushort IFA_LOCAL = 2;
    public const ushort IFA_LABEL = 3;
    public const ushort IFA_FLAGS = 8;

    public const uint IFA_F_PERMANENT = 0x80;
}

/// <summary>include/uapi/linux/neighbour.h: neighbours and FDB entries.</summary>
internal static class NeighborConstants
{
    /// <summary>sizeof(struct ndmsg).</summary>
    public const int NDMSG_LEN = 12;

    public const ushort NDA_DST = 1;
    public const ushort NDA_LLADDR = 2;
    public const ushort NDA_MASTER = 9;
    public const ushort NDA_IFINDEX = 8;

    public const ushort NUD_NOARP = 0x40;
    public const ushort NUD_PERMANENT = 0x80;

    public const byte NTF_SELF = 0x02;
    public const byte NTF_MASTER = 0x04;
}

/// <summary>include/uapi/linux/nexthop.h: nexthop objects.</summary>
internal static class NexthopConstants
{
    /// <summary>sizeof(struct nhmsg).</summary>
    public const int NHMSG_LEN = 8;

    public const ushort NHA_ID = 1;
    public const ushort NHA_GROUP = 2;
    public const ushort NHA_BLACKHOLE = 4;
    public const ushort NHA_OIF = 5;
    public const ushort NHA_GATEWAY = 6;
}

/// <summary>include/linux/socket.h address families, as netlink headers carry them.</summary>
internal static class AddressFamilies
{
    public const byte AF_UNSPEC = 0;
    public const byte AF_INET = 2;
    public const byte AF_BRIDGE = 7;
    public const byte AF_INET6 = 10;
    public const int AF_NETLINK = 16;
}

/// <summary>Socket-level values Tmds.LibC exposes only as properties (not usable in constant expressions).</summary>
internal static class SocketConstants
{
    public const int SOCK_RAW = 3;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int SOL_SOCKET = 1;
    public const int SO_SNDBUF = 7;
    public const int SO_RCVBUF = 8;
    public const int SO_SNDBUFFORCE = 32;
    public const int SO_RCVBUFFORCE = 33;
    public const int CLONE_NEWNET = 0x40000000;
}
