using System.Net;

namespace Flannel.Netlink.Icmp;

/// <summary>What a received ICMP message is.</summary>
public enum IcmpMessageKind
{
    /// <summary>An echo reply to one of our echo requests (ICMP type 0, ICMPv6 type 129).</summary>
    EchoReply,

    /// <summary>A destination unreachable error about a packet we sent (ICMP type 3, ICMPv6 type 1).</summary>
    DestinationUnreachable,

    /// <summary>A time exceeded error (a routing loop or a TTL too small) about a packet we sent.</summary>
    TimeExceeded,

    /// <summary>An ICMPv6 packet too big error about a packet we sent.</summary>
    PacketTooBig,
}

/// <summary>Why a destination was unreachable (the ICMP code, normalised across IPv4 and IPv6).</summary>
public enum IcmpUnreachableReason
{
    /// <summary>Not a destination unreachable message.</summary>
    None,

    /// <summary>No route to the network.</summary>
    Network,

    /// <summary>The host did not answer neighbour resolution, or no route to it.</summary>
    Host,

    /// <summary>The destination does not speak the protocol.</summary>
    Protocol,

    /// <summary>Nothing listens on the destination port.</summary>
    Port,

    /// <summary>The packet needs fragmenting but carries DF (IPv4) — a path MTU problem.</summary>
    FragmentationNeeded,

    /// <summary>A firewall rejected the packet (ICMP code 9, 10 or 13; ICMPv6 codes 1, 5 or 6).</summary>
    AdministrativelyProhibited,

    /// <summary>Another code.</summary>
    Other,
}

/// <summary>
/// One ICMP message the echo socket received: an echo reply, or an error that quotes an echo request. Messages
/// about anything else are not surfaced.
/// </summary>
public readonly record struct IcmpMessage
{
    /// <summary>What the message is.</summary>
    public required IcmpMessageKind Kind { get; init; }

    /// <summary>Who sent the ICMP message: the probed host for a reply or a port unreachable, a router for most errors.</summary>
    public required IPAddress From { get; init; }

    /// <summary>For an echo reply, or an error quoting an echo request: the echo identifier.</summary>
    public ushort Identifier { get; init; }

    /// <summary>For an echo reply, or an error quoting an echo request: the echo sequence number.</summary>
    public ushort Sequence { get; init; }

    /// <summary>For an echo reply: the first 8 bytes of the echo payload (big-endian), which the sender set as a cookie.</summary>
    public ulong Cookie { get; init; }

    /// <summary>For an error: why the destination was unreachable.</summary>
    public IcmpUnreachableReason Reason { get; init; }

    /// <summary>For an error: the destination of the quoted packet (the address we probed).</summary>
    public IPAddress? QuotedDestination { get; init; }

    /// <summary>For a fragmentation-needed or packet-too-big error: the MTU the reporter asks for (0 when not given).</summary>
    public int NextHopMtu { get; init; }
}
