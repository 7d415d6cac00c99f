using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace Flannel.Networking;

/// <summary>
/// Parses addresses and CIDRs as strictly as Go's <c>net.ParseIP</c> / <c>net.ParseCIDR</c>, which is what
/// flannel reads its config and leases with.
/// </summary>
/// <remarks>
/// <see cref="IPAddress.TryParse(string?, out IPAddress?)"/> accepts forms Go rejects (<c>10.1</c>,
/// <c>0x0a.0.0.1</c>, <c>[::1]</c>, <c>fe80::1%eth0</c>, leading or trailing blanks), so a config that
/// Go flanneld refuses would silently mean something else here. These helpers accept only the dotted quad
/// (no leading zeros, as Go since 1.17) and plain IPv6 text without a zone.
/// </remarks>
internal static class IPText
{
    /// <summary>Parses an IPv4 or IPv6 address with Go's rules.</summary>
    public static bool TryParseAddress(ReadOnlySpan<char> text, [NotNullWhen(true)] out IPAddress? address)
    {
        address = null;
        if (text.IsEmpty)
        {
            return false;
        }

        if (text.Contains(':'))
        {
            // IPv6 (possibly with an embedded dotted quad). No brackets, zones or blanks.
            foreach (char c in text)
            {
                if (!(char.IsAsciiHexDigit(c) || c is ':' or '.'))
                {
                    return false;
                }
            }

            return IPAddress.TryParse(text, out address) && address.AddressFamily == AddressFamily.InterNetworkV6;
        }

        if (!IsDottedQuad(text))
        {
            return false;
        }

        return IPAddress.TryParse(text, out address) && address.AddressFamily == AddressFamily.InterNetwork;
    }

    /// <summary>Parses an address of one family with Go's rules.</summary>
    public static bool TryParseAddress(ReadOnlySpan<char> text, AddressFamily family, [NotNullWhen(true)] out IPAddress? address)
    {
        if (TryParseAddress(text, out address) && address.AddressFamily == family)
        {
            return true;
        }

        address = null;
        return false;
    }

    /// <summary>
    /// Parses a CIDR such as <c>10.244.0.0/16</c> with Go's <c>net.ParseCIDR</c> rules and returns the network
    /// (host bits dropped, as Go does).
    /// </summary>
    public static bool TryParseNetwork(ReadOnlySpan<char> text, out IPNetwork network)
    {
        network = default;
        int slash = text.IndexOf('/');
        if (slash < 0)
        {
            return false;
        }

        // Go's dtoi: decimal digits, leading zeros allowed (10.0.0.0/016 is a /16).
        ReadOnlySpan<char> lengthText = text[(slash + 1)..];
        if (lengthText.IsEmpty)
        {
            return false;
        }

        int prefix = 0;
        foreach (char c in lengthText)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }

            prefix = Math.Min((prefix * 10) + (c - '0'), 1000);
        }

        if (!TryParseAddress(text[..slash], out IPAddress? address)
            || prefix > IPNetworkMath.BitLength(address.AddressFamily))
        {
            return false;
        }

        network = new IPNetwork(IPNetworkMath.Mask(address, prefix), prefix);
        return true;
    }

    /// <summary>Parses a CIDR of one family with Go's rules.</summary>
    public static bool TryParseNetwork(ReadOnlySpan<char> text, AddressFamily family, out IPNetwork network)
    {
        if (TryParseNetwork(text, out network) && network.BaseAddress.AddressFamily == family)
        {
            return true;
        }

        network = default;
        return false;
    }

    private static bool IsDottedQuad(ReadOnlySpan<char> text)
    {
        int parts = 0;
        foreach (Range range in text.Split('.'))
        {
            ReadOnlySpan<char> part = text[range];
            if (part.IsEmpty || part.Length > 3 || (part.Length > 1 && part[0] == '0'))
            {
                return false;
            }

            int value = 0;
            foreach (char c in part)
            {
                if (!char.IsAsciiDigit(c))
                {
                    return false;
                }

                value = (value * 10) + (c - '0');
            }

            if (value > 255)
            {
                return false;
            }

            parts++;
        }

        return parts == 4;
    }
}
