// ICMP and raw-socket constants with their uapi spellings (include/uapi/linux/icmp.h, icmpv6.h, in.h, in6.h), so
// they grep against the kernel headers. Only the ICMP echo socket and its message codec use them.
#pragma warning disable CA1707 // Identifiers should not contain underscores: these are the kernel's names.
#pragma warning disable SA1310
#pragma warning disable IDE1006

namespace Flannel.Netlink.Interop;

/// <summary>include/uapi/linux/icmp.h (ICMP for IPv4, RFC 792).</summary>
internal static class Icmp4Constants
{
    public const byte ICMP_ECHOREPLY = 0;
    public const byte ICMP_DEST_UNREACH = 3;
    public const byte ICMP_ECHO = 8;
    public const byte ICMP_TIME_EXCEEDED = 11;

    // Codes for ICMP_DEST_UNREACH.
    public const byte ICMP_NET_UNREACH = 0;
    public const byte ICMP_HOST_UNREACH = 1;
    public const byte ICMP_PROT_UNREACH = 2;
    public const byte ICMP_PORT_UNREACH = 3;
    public const byte ICMP_FRAG_NEEDED = 4;
    public const byte ICMP_NET_ANO = 9;
    public const byte ICMP_HOST_ANO = 10;
    public const byte ICMP_PKT_FILTERED = 13;

    /// <summary>setsockopt(SOL_RAW, ICMP_FILTER, struct icmp_filter { __u32 data; }): a set bit drops that type.</summary>
    public const int ICMP_FILTER = 1;

    /// <summary>IPPROTO_ICMP, the protocol number in the IPv4 header.</summary>
    public const byte IPPROTO_ICMP = 1;
}

/// <summary>include/uapi/linux/icmpv6.h (ICMPv6, RFC 4443).</summary>
internal static class Icmp6Constants
{
    public const byte ICMPV6_DEST_UNREACH = 1;
    public const byte ICMPV6_PKT_TOOBIG = 2;
    public const byte ICMPV6_TIME_EXCEED = 3;
    public const byte ICMPV6_ECHO_REQUEST = 128;
    public const byte ICMPV6_ECHO_REPLY = 129;

    // Codes for ICMPV6_DEST_UNREACH.
    public const byte ICMPV6_NOROUTE = 0;
    public const byte ICMPV6_ADM_PROHIBITED = 1;
    public const byte ICMPV6_ADDR_UNREACH = 3;
    public const byte ICMPV6_PORT_UNREACH = 4;
    public const byte ICMPV6_POLICY_FAIL = 5;
    public const byte ICMPV6_REJECT_ROUTE = 6;

    /// <summary>setsockopt(SOL_ICMPV6, ICMPV6_FILTER, struct icmp6_filter { __u32 data[8]; }): a set bit drops that type.</summary>
    public const int ICMPV6_FILTER = 1;

    /// <summary>Next-header value of ICMPv6 in a quoted IPv6 header.</summary>
    public const byte IPPROTO_ICMPV6 = 58;
}

/// <summary>Layouts the echo socket writes with sendmsg (include/uapi/linux/in.h, in6.h, bits/socket.h).</summary>
internal static class RawSocketLayout
{
    /// <summary>sizeof(struct in_pktinfo): int ipi_ifindex; struct in_addr ipi_spec_dst; struct in_addr ipi_addr.</summary>
    public const int SizeOfInPktinfo = 12;

    /// <summary>sizeof(struct in6_pktinfo): struct in6_addr ipi6_addr; int ipi6_ifindex.</summary>
    public const int SizeOfIn6Pktinfo = 20;

    /// <summary>sizeof(struct sockaddr_in).</summary>
    public const int SizeOfSockaddrIn = 16;

    /// <summary>sizeof(struct sockaddr_in6).</summary>
    public const int SizeOfSockaddrIn6 = 28;

    /// <summary>AF_INET.</summary>
    public const ushort AF_INET = 2;

    /// <summary>AF_INET6.</summary>
    public const ushort AF_INET6 = 10;
}
