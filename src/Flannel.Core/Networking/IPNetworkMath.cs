using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Flannel.Networking;

/// <summary>
/// Address arithmetic for IPv4 and IPv6 over <see cref="IPNetwork"/>: one code path for both families,
/// using 128-bit integers.
/// </summary>
public static class IPNetworkMath
{
    /// <summary>Returns <paramref name="address"/> with every bit after <paramref name="prefixLength"/> cleared.</summary>
    public static IPAddress Mask(IPAddress address, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(address);
        int bits = BitLength(address.AddressFamily);
        ArgumentOutOfRangeException.ThrowIfNegative(prefixLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(prefixLength, bits);
        UInt128 value = ToUInt128(address);
        UInt128 mask = prefixLength == 0 ? UInt128.Zero : UInt128.MaxValue << (bits - prefixLength);
        if (bits == 32)
        {
            mask &= uint.MaxValue;
        }

        return FromUInt128(value & mask, address.AddressFamily);
    }

    /// <summary>Number of bits in an address of <paramref name="family"/> (32 or 128).</summary>
    public static int BitLength(AddressFamily family) => family switch
    {
        AddressFamily.InterNetwork => 32,
        AddressFamily.InterNetworkV6 => 128,
        _ => throw new ArgumentOutOfRangeException(nameof(family), family, "Only IPv4 and IPv6 are supported."),
    };

    /// <summary>The address as an unsigned integer (IPv4 in the low 32 bits).</summary>
    public static UInt128 ToUInt128(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        Span<byte> bytes = stackalloc byte[16];
        if (!address.TryWriteBytes(bytes, out int written))
        {
            throw new ArgumentException("The address could not be written.", nameof(address));
        }

        return written == 4
            ? BinaryPrimitives.ReadUInt32BigEndian(bytes)
            : BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    /// <summary>Builds an address of <paramref name="family"/> from an unsigned integer.</summary>
    public static IPAddress FromUInt128(UInt128 value, AddressFamily family)
    {
        if (family == AddressFamily.InterNetwork)
        {
            Span<byte> v4 = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(v4, (uint)value);
            return new IPAddress(v4);
        }

        Span<byte> v6 = stackalloc byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(v6, value);
        return new IPAddress(v6);
    }

    /// <summary>Number of addresses in a network of <paramref name="prefixLength"/> bits (2^(bits−prefix)), saturating.</summary>
    public static UInt128 Size(AddressFamily family, int prefixLength)
    {
        int hostBits = BitLength(family) - prefixLength;
        return hostBits >= 128 ? UInt128.MaxValue : UInt128.One << hostBits;
    }

    /// <summary>Number of addresses in <paramref name="network"/>, saturating at <see cref="UInt128.MaxValue"/> for ::/0.</summary>
    public static UInt128 Size(IPNetwork network) => Size(network.BaseAddress.AddressFamily, network.PrefixLength);

    /// <summary>The network's first address as an integer.</summary>
    public static UInt128 First(IPNetwork network) => ToUInt128(network.BaseAddress);

    /// <summary>The network's last address as an integer (the broadcast address for IPv4).</summary>
    public static UInt128 Last(IPNetwork network) =>
        ToUInt128(network.BaseAddress) + (HostMask(network.BaseAddress.AddressFamily, network.PrefixLength));

    /// <summary>
    /// The "first host" address of a subnet (network address + 1): what flannel writes as
    /// <c>FLANNEL_SUBNET</c> (<c>10.244.2.0/24</c> → <c>10.244.2.1</c>) and gives the bridge.
    /// </summary>
    /// <exception cref="ArgumentException">The network has no second address (a /32 or /128).</exception>
    public static IPAddress FirstHost(IPNetwork network)
    {
        AddressFamily family = network.BaseAddress.AddressFamily;
        if (network.PrefixLength >= BitLength(family))
        {
            throw new ArgumentException($"{network} has no host address after its network address.", nameof(network));
        }

        return FromUInt128(First(network) + 1, family);
    }

    /// <summary>
    /// The subnet of the same size right after <paramref name="network"/> (flannel's <c>IP4Net.Next</c>);
    /// false when it would run past the end of the address space.
    /// </summary>
    public static bool TryGetNext(IPNetwork network, out IPNetwork next)
    {
        AddressFamily family = network.BaseAddress.AddressFamily;
        UInt128 last = Last(network);
        UInt128 top = family == AddressFamily.InterNetwork ? uint.MaxValue : UInt128.MaxValue;
        if (last == top)
        {
            next = default;
            return false;
        }

        next = new IPNetwork(FromUInt128(last + 1, family), network.PrefixLength);
        return true;
    }

    /// <summary>True when <paramref name="inner"/> lies entirely inside <paramref name="outer"/> (same family).</summary>
    public static bool Contains(IPNetwork outer, IPNetwork inner) =>
        outer.BaseAddress.AddressFamily == inner.BaseAddress.AddressFamily
        && outer.PrefixLength <= inner.PrefixLength
        && outer.Contains(inner.BaseAddress);

    /// <summary>True when the two networks share at least one address (same family).</summary>
    public static bool Overlaps(IPNetwork a, IPNetwork b) =>
        a.BaseAddress.AddressFamily == b.BaseAddress.AddressFamily
        && (a.PrefixLength <= b.PrefixLength ? a.Contains(b.BaseAddress) : b.Contains(a.BaseAddress));

    /// <summary>True when <paramref name="address"/> is the first address of a <paramref name="prefixLength"/>-bit subnet.</summary>
    public static bool IsAligned(IPAddress address, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(address);
        return (ToUInt128(address) & HostMask(address.AddressFamily, prefixLength)) == UInt128.Zero;
    }

    /// <summary>
    /// The subnets of <paramref name="prefixLength"/> bits from <paramref name="first"/> to <paramref name="last"/>
    /// inclusive, as flannel walks from SubnetMin to SubnetMax. The enumerator is a struct and does not allocate
    /// unless <see cref="SubnetRange.Enumerator.Current"/> is read.
    /// </summary>
    /// <exception cref="ArgumentException">The addresses are of different families or <paramref name="first"/> is not on a subnet boundary.</exception>
    public static SubnetRange EnumerateSubnets(IPAddress first, IPAddress last, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(last);
        if (first.AddressFamily != last.AddressFamily)
        {
            throw new ArgumentException($"{first} and {last} are not of the same address family.", nameof(last));
        }

        int bits = BitLength(first.AddressFamily);
        ArgumentOutOfRangeException.ThrowIfNegative(prefixLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(prefixLength, bits);
        if (!IsAligned(first, prefixLength))
        {
            throw new ArgumentException($"{first} is not on a /{prefixLength} boundary.", nameof(first));
        }

        return new SubnetRange(ToUInt128(first), ToUInt128(last), prefixLength, first.AddressFamily);
    }

    /// <summary>The mask of the host bits of a <paramref name="prefixLength"/>-bit network (e.g. 0xFF for a /24).</summary>
    public static UInt128 HostMask(AddressFamily family, int prefixLength)
    {
        int hostBits = BitLength(family) - prefixLength;
        ArgumentOutOfRangeException.ThrowIfNegative(hostBits, nameof(prefixLength));
        return hostBits >= 128 ? UInt128.MaxValue : (UInt128.One << hostBits) - 1;
    }
}
