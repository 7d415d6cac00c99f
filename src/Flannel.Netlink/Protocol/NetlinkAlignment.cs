using System.Runtime.CompilerServices;
using Flannel.Netlink.Interop;

namespace Flannel.Netlink.Protocol;

/// <summary>The kernel's alignment macros. Messages and attributes both start on 4-byte boundaries.</summary>
internal static class NetlinkAlignment
{
    /// <summary><c>NLMSG_ALIGN(len)</c>: <c>((len) + NLMSG_ALIGNTO - 1) &amp; ~(NLMSG_ALIGNTO - 1)</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int MessageAlign(int length) => (length + NetlinkHeader.NLMSG_ALIGNTO - 1) & ~(NetlinkHeader.NLMSG_ALIGNTO - 1);

    /// <summary><c>NLA_ALIGN(len)</c>: <c>((len) + NLA_ALIGNTO - 1) &amp; ~(NLA_ALIGNTO - 1)</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int AttributeAlign(int length) => (length + NetlinkHeader.NLA_ALIGNTO - 1) & ~(NetlinkHeader.NLA_ALIGNTO - 1);

    /// <summary><c>NLA_HDRLEN + NLA_ALIGN(payload)</c>: the space one attribute takes, padding included.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int AttributeSpace(int payloadLength) => NetlinkHeader.NLA_HDRLEN + AttributeAlign(payloadLength);
}
