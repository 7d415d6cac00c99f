using Flannel.Networking;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Flannel.Subnets;

/// <summary>
/// Flannel's subnet key: <c>10.244.1.0-24</c>, or <c>10.244.1.0-24&amp;fd00:10:244:1::-64</c> for a dual-stack
/// lease. It is the last segment of the etcd key <c>&lt;prefix&gt;/subnets/&lt;key&gt;</c>.
/// </summary>
public static class SubnetKey
{
    /// <summary>Formats the key. At least one subnet must be given; the IPv4 part comes first.</summary>
    public static string Format(IPNetwork? subnet, IPNetwork? ipv6Subnet)
    {
        if (subnet is null && ipv6Subnet is null)
        {
            throw new ArgumentException("A subnet key needs an IPv4 or an IPv6 subnet.", nameof(subnet));
        }

        string v4 = subnet is { } s ? FormatOne(s) : string.Empty;
        if (ipv6Subnet is not { } s6)
        {
            return v4;
        }

        return subnet is null ? FormatOne(s6) : string.Concat(v4, "&", FormatOne(s6));
    }

    /// <summary>
    /// Parses a key with flannel's rules: an IPv4 part is required, the IPv6 part is optional, and anything
    /// before the key (such as the etcd prefix) is ignored, as flannel's unanchored regular expression does.
    /// </summary>
    public static bool TryParse(string? text, out IPNetwork? subnet, out IPNetwork? ipv6Subnet)
    {
        subnet = null;
        ipv6Subnet = null;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        int slash = text.LastIndexOf('/');
        ReadOnlySpan<char> key = slash >= 0 ? text.AsSpan(slash + 1) : text.AsSpan();
        int amp = key.IndexOf('&');
        ReadOnlySpan<char> v4 = amp >= 0 ? key[..amp] : key;
        if (!TryParseOne(v4, AddressFamily.InterNetwork, out IPNetwork parsed4))
        {
            return false;
        }

        if (amp >= 0)
        {
            if (!TryParseOne(key[(amp + 1)..], AddressFamily.InterNetworkV6, out IPNetwork parsed6))
            {
                return false;
            }

            ipv6Subnet = parsed6;
        }

        subnet = parsed4;
        return true;
    }

    /// <summary>Parses a key, throwing <see cref="FormatException"/> naming the key when it is not valid.</summary>
    public static (IPNetwork? Subnet, IPNetwork? IPv6Subnet) Parse(string text)
    {
        if (!TryParse(text, out IPNetwork? subnet, out IPNetwork? ipv6Subnet))
        {
            throw new FormatException($"Subnet key '{text}' is not of the form '10.244.1.0-24' or '10.244.1.0-24&fd00::-64'.");
        }

        return (subnet, ipv6Subnet);
    }

    private static string FormatOne(IPNetwork network) =>
        string.Create(CultureInfo.InvariantCulture, $"{network.BaseAddress}-{network.PrefixLength}");

    private static bool TryParseOne(ReadOnlySpan<char> text, AddressFamily family, [NotNullWhen(true)] out IPNetwork network)
    {
        network = default;
        int dash = text.LastIndexOf('-');
        if (dash <= 0 || dash == text.Length - 1)
        {
            return false;
        }

        ReadOnlySpan<char> lengthText = text[(dash + 1)..];
        foreach (char c in lengthText)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        if (!IPAddress.TryParse(text[..dash], out IPAddress? address) || address.AddressFamily != family
            || !int.TryParse(lengthText, NumberStyles.None, CultureInfo.InvariantCulture, out int prefix))
        {
            return false;
        }

        int max = family == AddressFamily.InterNetwork ? 32 : 128;
        if (prefix > max)
        {
            return false;
        }

        // Host bits are dropped, as Go's net.ParseCIDR does for the key flannel reads back.
        network = new IPNetwork(IPNetworkMath.Mask(address, prefix), prefix);
        return true;
    }
}
