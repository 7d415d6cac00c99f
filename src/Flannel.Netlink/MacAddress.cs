using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Flannel.Netlink;

/// <summary>
/// A 48-bit Ethernet address, formatted as flannel writes a VtepMAC: lower-case hex with colons
/// (<c>c6:d2:32:6f:8f:44</c>). A value type, so it costs no allocation.
/// </summary>
public readonly struct MacAddress : IEquatable<MacAddress>, ISpanFormattable
{
    private readonly ulong _value; // the six bytes in network order in the low 48 bits

    private MacAddress(ulong value) => _value = value & 0xFFFF_FFFF_FFFFUL;

    /// <summary>Creates an address from six bytes.</summary>
    public MacAddress(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != 6)
        {
            throw new ArgumentException($"A MAC address has 6 bytes, not {bytes.Length}.", nameof(bytes));
        }

        Span<byte> wide = stackalloc byte[8];
        wide.Clear();
        bytes.CopyTo(wide[2..]);
        _value = BinaryPrimitives.ReadUInt64BigEndian(wide);
    }

    /// <summary>The all-zero address.</summary>
    public static MacAddress Zero => default;

    /// <summary>True when the locally-administered bit is set.</summary>
    public bool IsLocallyAdministered => (FirstByte & 0x02) != 0;

    /// <summary>True when the multicast (group) bit is set.</summary>
    public bool IsMulticast => (FirstByte & 0x01) != 0;

    private byte FirstByte => (byte)(_value >> 40);

    /// <summary>
    /// A random locally-administered unicast address, as flannel makes a VtepMAC:
    /// <c>b[0] = (b[0] &amp; 0xfe) | 0x02</c>.
    /// </summary>
    /// <remarks>
    /// The address only has to differ from its neighbours', not to be secret, so it comes from <see cref="Random.Shared"/>
    /// (seeded from the OS). <c>RandomNumberGenerator</c> would load OpenSSL (libssl and libcrypto, 3.4 MiB of
    /// resident pages) into a flanneld that never speaks TLS.
    /// </remarks>
    public static MacAddress NewRandomLocal()
    {
        Span<byte> bytes = stackalloc byte[6];
        Random.Shared.NextBytes(bytes);
        bytes[0] = (byte)((bytes[0] & 0xfe) | 0x02);
        return new MacAddress(bytes);
    }

    /// <summary>Writes the six bytes to <paramref name="destination"/>.</summary>
    public bool TryWriteBytes(Span<byte> destination)
    {
        if (destination.Length < 6)
        {
            return false;
        }

        Span<byte> wide = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(wide, _value);
        wide[2..].CopyTo(destination);
        return true;
    }

    /// <summary>Returns the six bytes.</summary>
    public byte[] GetBytes()
    {
        byte[] bytes = new byte[6];
        TryWriteBytes(bytes);
        return bytes;
    }

    /// <summary>Parses <c>aa:bb:cc:dd:ee:ff</c> or <c>aa-bb-cc-dd-ee-ff</c>, either case.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out MacAddress address) =>
        TryParse(text.AsSpan(), out address);

    /// <summary>Parses <c>aa:bb:cc:dd:ee:ff</c> or <c>aa-bb-cc-dd-ee-ff</c>, either case.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out MacAddress address)
    {
        address = default;
        if (text.Length != 17)
        {
            return false;
        }

        char separator = text[2];
        if (separator is not (':' or '-'))
        {
            return false;
        }

        ulong value = 0;
        for (int i = 0; i < 6; i++)
        {
            int at = i * 3;
            if (i > 0 && text[at - 1] != separator)
            {
                return false;
            }

            if (!byte.TryParse(text.Slice(at, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte b))
            {
                return false;
            }

            value = (value << 8) | b;
        }

        address = new MacAddress(value);
        return true;
    }

    /// <summary>Parses an address, throwing <see cref="FormatException"/> that quotes the text.</summary>
    public static MacAddress Parse(string text) =>
        TryParse(text, out MacAddress address)
            ? address
            : throw new FormatException($"'{text}' is not a MAC address of the form aa:bb:cc:dd:ee:ff.");

    /// <inheritdoc />
    public bool Equals(MacAddress other) => _value == other._value;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is MacAddress other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => _value.GetHashCode();

    /// <summary>Equality.</summary>
    public static bool operator ==(MacAddress left, MacAddress right) => left.Equals(right);

    /// <summary>Inequality.</summary>
    public static bool operator !=(MacAddress left, MacAddress right) => !left.Equals(right);

    /// <summary>Lower-case, colon-separated, as flannel writes it.</summary>
    public override string ToString() => string.Create(17, _value, static (span, value) => Format(value, span));

    /// <inheritdoc />
    public string ToString(string? format, IFormatProvider? formatProvider) => ToString();

    /// <inheritdoc />
    public bool TryFormat(Span<char> destination, out int charsWritten, ReadOnlySpan<char> format, IFormatProvider? provider)
    {
        if (destination.Length < 17)
        {
            charsWritten = 0;
            return false;
        }

        Format(_value, destination);
        charsWritten = 17;
        return true;
    }

    private static void Format(ulong value, Span<char> destination)
    {
        const string Hex = "0123456789abcdef";
        for (int i = 0; i < 6; i++)
        {
            byte b = (byte)(value >> (40 - (8 * i)));
            destination[i * 3] = Hex[b >> 4];
            destination[(i * 3) + 1] = Hex[b & 0xF];
            if (i < 5)
            {
                destination[(i * 3) + 2] = ':';
            }
        }
    }
}
