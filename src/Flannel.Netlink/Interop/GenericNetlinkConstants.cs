// Kernel constants with their uapi spellings (include/uapi/linux/genetlink.h and wireguard.h), so they grep
// against the kernel. Like NetlinkConstants.cs, nothing above Interop/ uses these names.
#pragma warning disable CA1707 // Identifiers should not contain underscores: these are the kernel's names.
#pragma warning disable SA1310
#pragma warning disable IDE1006

namespace Flannel.Netlink.Interop;

/// <summary>include/uapi/linux/netlink.h and genetlink.h: the generic netlink envelope and its controller.</summary>
internal static class GenericNetlinkConstants
{
    /// <summary>The protocol number for socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC).</summary>
    public const int NETLINK_GENERIC = 16;

    /// <summary>GENL_HDRLEN: sizeof(struct genlmsghdr) = u8 cmd, u8 version, u16 reserved.</summary>
    public const int GENL_HDRLEN = 4;

    /// <summary>GENL_NAMSIZ: a family name is at most 15 bytes plus its NUL.</summary>
    public const int GENL_NAMSIZ = 16;

    /// <summary>GENL_ID_CTRL (= NLMSG_MIN_TYPE): the controller family, which resolves names to ids.</summary>
    public const ushort GENL_ID_CTRL = 0x10;

    // enum ctrl_cmd.
    public const byte CTRL_CMD_NEWFAMILY = 1;
    public const byte CTRL_CMD_GETFAMILY = 3;

    /// <summary>The controller's own version, as libmnl/libnl (and so wireguard-tools) send it.</summary>
    public const byte CTRL_VERSION = 1;

    // enum ctrl_attr.
    public const ushort CTRL_ATTR_FAMILY_ID = 1;
    public const ushort CTRL_ATTR_FAMILY_NAME = 2;
    public const ushort CTRL_ATTR_VERSION = 3;
    public const ushort CTRL_ATTR_HDRSIZE = 4;
    public const ushort CTRL_ATTR_MAXATTR = 5;
    public const ushort CTRL_ATTR_OPS = 6;
    public const ushort CTRL_ATTR_MCAST_GROUPS = 7;

    // enum ctrl_attr_mcast_grp.
    public const ushort CTRL_ATTR_MCAST_GRP_NAME = 1;
    public const ushort CTRL_ATTR_MCAST_GRP_ID = 2;
}

/// <summary>include/uapi/linux/wireguard.h: the <c>wireguard</c> generic netlink family.</summary>
internal static class WireGuardConstants
{
    /// <summary>WG_GENL_NAME.</summary>
    public const string WG_GENL_NAME = "wireguard";

    /// <summary>WG_GENL_VERSION.</summary>
    public const byte WG_GENL_VERSION = 1;

    /// <summary>WG_KEY_LEN.</summary>
    public const int WG_KEY_LEN = 32;

    // enum wg_cmd.
    public const byte WG_CMD_GET_DEVICE = 0;
    public const byte WG_CMD_SET_DEVICE = 1;

    // enum wgdevice_flag.
    public const uint WGDEVICE_F_REPLACE_PEERS = 1u << 0;

    // enum wgdevice_attribute.
    public const ushort WGDEVICE_A_IFINDEX = 1;
    public const ushort WGDEVICE_A_IFNAME = 2;
    public const ushort WGDEVICE_A_PRIVATE_KEY = 3;
    public const ushort WGDEVICE_A_PUBLIC_KEY = 4;
    public const ushort WGDEVICE_A_FLAGS = 5;
    public const ushort WGDEVICE_A_LISTEN_PORT = 6;
    public const ushort WGDEVICE_A_FWMARK = 7;
    public const ushort WGDEVICE_A_PEERS = 8;

    // enum wgpeer_flag.
    public const uint WGPEER_F_REMOVE_ME = 1u << 0;
    public const uint WGPEER_F_REPLACE_ALLOWEDIPS = 1u << 1;
    public const uint WGPEER_F_UPDATE_ONLY = 1u << 2;

    // enum wgpeer_attribute.
    public const ushort WGPEER_A_PUBLIC_KEY = 1;
    public const ushort WGPEER_A_PRESHARED_KEY = 2;
    public const ushort WGPEER_A_FLAGS = 3;
    public const ushort WGPEER_A_ENDPOINT = 4;
    public const ushort WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL = 5;
    public const ushort WGPEER_A_LAST_HANDSHAKE_TIME = 6;
    public const ushort WGPEER_A_RX_BYTES = 7;
    public const ushort WGPEER_A_TX_BYTES = 8;
    public const ushort WGPEER_A_ALLOWEDIPS = 9;
    public const ushort WGPEER_A_PROTOCOL_VERSION = 10;

    // enum wgallowedip_attribute.
    public const ushort WGALLOWEDIP_A_FAMILY = 1;
    public const ushort WGALLOWEDIP_A_IPADDR = 2;
    public const ushort WGALLOWEDIP_A_CIDR_MASK = 3;
    public const ushort WGALLOWEDIP_A_FLAGS = 4;

    /// <summary>sizeof(struct sockaddr_in): u16 family, be16 port, 4-byte address, 8 bytes of zero.</summary>
    public const int SOCKADDR_IN_LEN = 16;

    /// <summary>sizeof(struct sockaddr_in6): u16 family, be16 port, be32 flowinfo, 16-byte address, u32 scope id.</summary>
    public const int SOCKADDR_IN6_LEN = 28;

    /// <summary>sizeof(struct __kernel_timespec): s64 seconds, s64 nanoseconds.</summary>
    public const int KERNEL_TIMESPEC_LEN = 16;
}
