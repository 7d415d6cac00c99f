using Flannel.Netlink.Interop;

namespace Flannel.Netlink.Messages;

/// <summary>The nlmsg_flags combinations requests use, named by intent (as iproute2 sends them).</summary>
internal static class RequestFlags
{
    /// <summary>Create, failing with EEXIST if present (<c>ip … add</c>): REQUEST|ACK|EXCL|CREATE.</summary>
    public const ushort CreateExclusive = NetlinkHeader.NLM_F_REQUEST | NetlinkHeader.NLM_F_ACK | NetlinkHeader.NLM_F_EXCL | NetlinkHeader.NLM_F_CREATE;

    /// <summary>Create or overwrite (<c>ip … replace</c>): REQUEST|ACK|REPLACE|CREATE.</summary>
    public const ushort Replace = NetlinkHeader.NLM_F_REQUEST | NetlinkHeader.NLM_F_ACK | NetlinkHeader.NLM_F_REPLACE | NetlinkHeader.NLM_F_CREATE;

    /// <summary>Delete or modify in place: REQUEST|ACK.</summary>
    public const ushort Acknowledged = NetlinkHeader.NLM_F_REQUEST | NetlinkHeader.NLM_F_ACK;

    /// <summary>A dump: REQUEST|DUMP (the reply ends with NLMSG_DONE, no ack needed).</summary>
    public const ushort Dump = NetlinkHeader.NLM_F_REQUEST | NetlinkHeader.NLM_F_DUMP;

    /// <summary>A single get: REQUEST (the reply is the object or an error).</summary>
    public const ushort Get = NetlinkHeader.NLM_F_REQUEST;
}

/// <summary>Helpers shared by the message codecs.</summary>
internal static class FamilyCodes
{
    public static byte Of(System.Net.IPAddress address) =>
        address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? AddressFamilies.AF_INET6 : AddressFamilies.AF_INET;

    public static byte Of(System.Net.Sockets.AddressFamily? family) => family switch
    {
        null => AddressFamilies.AF_UNSPEC,
        System.Net.Sockets.AddressFamily.InterNetwork => AddressFamilies.AF_INET,
        System.Net.Sockets.AddressFamily.InterNetworkV6 => AddressFamilies.AF_INET6,
        _ => throw new ArgumentOutOfRangeException(nameof(family), family, "Only IPv4 and IPv6 are supported."),
    };

    /// <summary>The network of <paramref name="address"/> with the host bits cleared, as IPNetwork requires.</summary>
    public static System.Net.IPNetwork Network(System.Net.IPAddress address, int prefixLength)
    {
        int bits = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? 128 : 32;
        if (prefixLength > bits)
        {
            Protocol.ThrowHelper.ThrowMalformed($"prefix length {prefixLength} is longer than {bits} bits");
        }

        // Clear the host bits (System.Net.IPNetwork refuses a base address that has any).
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int length);
        for (int bit = prefixLength; bit < length * 8; bit++)
        {
            bytes[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        }

        return new System.Net.IPNetwork(new System.Net.IPAddress(bytes[..length]), prefixLength);
    }

    public static System.Net.IPAddress Unspecified(byte family) =>
        family == AddressFamilies.AF_INET6 ? System.Net.IPAddress.IPv6Any : System.Net.IPAddress.Any;
}
