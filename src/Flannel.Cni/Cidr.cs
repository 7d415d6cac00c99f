using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Flannel.Cni;

/// <summary>
/// An address with a prefix length, parsed as strictly as Go's <c>net.ParseCIDR</c> (dotted-quad IPv4 without
/// leading zeros, prefix in range). Written back in Go's <c>IPNet.String()</c> form.
/// </summary>
internal readonly record struct Cidr(IPAddress Address, int PrefixLength)
{
    /// <summary>The network form (host bits cleared), e.g. 10.244.1.1/24 → 10.244.1.0/24.</summary>
    public Cidr Network
    {
        get
        {
            byte[] bytes = Address.GetAddressBytes();
            for (int bit = PrefixLength; bit < bytes.Length * 8; bit++)
            {
                bytes[bit / 8] &= (byte)~(0x80 >> (bit % 8));
            }

            return new Cidr(new IPAddress(bytes), PrefixLength);
        }
    }

    public override string ToString() => $"{Address}/{PrefixLength.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Parses <paramref name="text"/> or throws <see cref="FormatException"/> with Go's message.</summary>
    public static Cidr Parse(string text) =>
        TryParse(text, out Cidr cidr) ? cidr : throw new FormatException($"invalid CIDR address: {text}");

    public static bool TryParse(string text, out Cidr cidr)
    {
        cidr = default;
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            return false;
        }

        string addressText = text[..slash];
        string prefixText = text[(slash + 1)..];
        if (prefixText.Length == 0 || prefixText.Length > 3 || !prefixText.All(char.IsAsciiDigit)
            || prefixText.Length > 1 && prefixText[0] == '0')
        {
            return false;
        }

        IPAddress? address;
        if (addressText.Contains(':', StringComparison.Ordinal))
        {
            if (addressText.Contains('%', StringComparison.Ordinal) || !IPAddress.TryParse(addressText, out address)
                || address.AddressFamily != AddressFamily.InterNetworkV6)
            {
                return false;
            }
        }
        else if (!TryParseDottedQuad(addressText, out address))
        {
            return false;
        }

        int prefix = int.Parse(prefixText, CultureInfo.InvariantCulture);
        if (prefix > (address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128))
        {
            return false;
        }

        cidr = new Cidr(address, prefix);
        return true;
    }

    /// <summary>Go accepts only four decimal octets, each 0..255 without leading zeros.</summary>
    private static bool TryParseDottedQuad(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IPAddress? address)
    {
        address = null;
        string[] parts = text.Split('.');
        if (parts.Length != 4)
        {
            return false;
        }

        var bytes = new byte[4];
        for (int i = 0; i < 4; i++)
        {
            string part = parts[i];
            if (part.Length is 0 or > 3 || !part.All(char.IsAsciiDigit) || part.Length > 1 && part[0] == '0')
            {
                return false;
            }

            int octet = int.Parse(part, CultureInfo.InvariantCulture);
            if (octet > 255)
            {
                return false;
            }

            bytes[i] = (byte)octet;
        }

        address = new IPAddress(bytes);
        return true;
    }
}
