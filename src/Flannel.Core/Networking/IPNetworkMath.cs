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
}
