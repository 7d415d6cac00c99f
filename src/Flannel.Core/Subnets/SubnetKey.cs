using Flannel.Networking;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Flannel.Subnets;

/// <summary>
/// Flannel's subnet key: <c>10.244.1.0-24</c>, or <c>10.244.1.0-24&amp;fd00:10:244:1::-64</c> for a dual-stack
/// lease. It is the last segment of the etcd key <c>&lt;prefix&gt;/subnets/&lt;key&gt;</c>.
/// </summary>
public static partial class SubnetKey
{
    /// <summary>Formats the key. At least one subnet must be given; the IPv4 part comes first.</summary>
    public static string Format(IPNetwork? subnet, IPNetwork? ipv6Subnet)
    {
        if (subnet is null && ipv6Subnet is null)
        {
            throw new ArgumentException("A subnet key needs an IPv4 or an IPv6 subnet.", nameof(subnet));
        }

        // flannel's MakeSubnetKey always writes the IPv4 part; with IPv4 disabled it is the empty IP4Net, 0.0.0.0-0,
        // so an IPv6-only key is 0.0.0.0-0&fd00:10:244:1::-64 (and flannel's pattern, like ours, requires the IPv4 part).
        string v4 = subnet is { } s ? FormatOne(s) : NoIPv4;
        return ipv6Subnet is { } s6 ? string.Concat(v4, "&", FormatOne(s6)) : v4;
    }

    /// <summary>
    /// Parses a key with flannel's rules (<c>ParseSubnetKey</c>): the same pattern,
    /// <c>(\d+\.\d+.\d+.\d+)-(\d+)(?:&amp;([a-f\d:]+)-(\d+))?$</c>, unanchored at the start (so an etcd prefix
    /// before the key is ignored) and anchored at the end; the IPv4 part is required and must be a dotted quad that
    /// Go's <c>net.ParseIP</c> accepts (no shortened, octal or hex forms, no leading zeros), with a prefix length of at
    /// most 31; the optional IPv6 part is lower-case only, with a prefix length of at most 127.
    /// </summary>
    /// <remarks>
    /// One rule is stricter than flannel: an address with host bits set (<c>10.244.1.7-24</c>) is rejected. flannel
    /// never writes such a key; it would keep the address as is and the kernel would refuse its route, while masking
    /// it would give two keys the same subnet.
    /// </remarks>
    public static bool TryParse(string? text, out IPNetwork? subnet, out IPNetwork? ipv6Subnet)
    {
        subnet = null;
        ipv6Subnet = null;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        // The form every IPv4 key has, digits and dots then a dash and digits, is the whole match of the pattern with
        // those two groups (the pattern cannot start later or split it otherwise), so it skips the regex: reading the
        // 5,000 keys of a lease list through it took 7-10 ms of a native flanneld's cold start.
        IPNetwork parsed4;
        if (TrySplitPlainIPv4Key(text, out int dash))
        {
            if (!TryParseOne(text.AsSpan(0, dash), text.AsSpan(dash + 1), AddressFamily.InterNetwork, out parsed4))
            {
                return false;
            }
        }
        else
        {
            Match match = KeyPattern().Match(text);
            if (!match.Success
                || !TryParseOne(match.Groups[1].ValueSpan, match.Groups[2].ValueSpan, AddressFamily.InterNetwork, out parsed4))
            {
                return false;
            }

            if (match.Groups[3].Success)
            {
                if (!TryParseOne(match.Groups[3].ValueSpan, match.Groups[4].ValueSpan, AddressFamily.InterNetworkV6, out IPNetwork parsed6))
                {
                    return false;
                }

                ipv6Subnet = parsed6;
            }
        }

        // 0.0.0.0-0 is flannel's "no IPv4 subnet" (an IPv6-only lease); alone it names no subnet at all.
        if (parsed4.PrefixLength == 0 && parsed4.BaseAddress.Equals(IPAddress.Any))
        {
            return ipv6Subnet is not null;
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

    /// <summary>The IPv4 part of an IPv6-only key (flannel's empty <c>IP4Net</c>).</summary>
    private const string NoIPv4 = "0.0.0.0-0";

    private static string FormatOne(IPNetwork network) =>
        string.Create(CultureInfo.InvariantCulture, $"{network.BaseAddress}-{network.PrefixLength}");

    // flannel's subnetRegex with ASCII digits (.NET's \d also matches other scripts' digits) and \z for Go's $ (which,
    // unlike .NET's, does not match before a final newline). The unescaped dots are flannel's.
    [GeneratedRegex(@"([0-9]+\.[0-9]+.[0-9]+.[0-9]+)-([0-9]+)(?:&([a-f0-9:]+)-([0-9]+))?\z", RegexOptions.CultureInvariant)]
    private static partial Regex KeyPattern();

    /// <summary>
    /// True when <paramref name="text"/> is exactly <c>D.D.D.D-D</c> (each D one or more ASCII digits), with the
    /// position of the dash.
    /// </summary>
    private static bool TrySplitPlainIPv4Key(string text, out int dash)
    {
        dash = -1;
        int dots = 0, digits = 0;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsAsciiDigit(c))
            {
                digits++;
                continue;
            }

            // Every separator follows at least one digit: three dots, then the dash.
            if (digits == 0 || dash >= 0 || c != (dots < 3 ? '.' : '-'))
            {
                return false;
            }

            if (c == '.')
            {
                dots++;
            }
            else
            {
                dash = i;
            }

            digits = 0;
        }

        return dash >= 0 && digits > 0;
    }

    private static bool TryParseOne(
        ReadOnlySpan<char> addressText, ReadOnlySpan<char> prefixText, AddressFamily family, out IPNetwork network)
    {
        network = default;

        // Go: strconv.ParseUint(prefix, 10, 5) for IPv4 and (…, 10, 7) for IPv6, so at most 31 and 127.
        int maxPrefix = family == AddressFamily.InterNetwork ? 31 : 127;
        int prefix = 0;
        foreach (char c in prefixText)
        {
            prefix = (prefix * 10) + (c - '0');
            if (prefix > maxPrefix)
            {
                return false;
            }
        }

        if (!IPText.TryParseAddress(addressText, family, out IPAddress? address)
            || !IPNetworkMath.Mask(address, prefix).Equals(address))
        {
            return false;
        }

        network = new IPNetwork(address, prefix);
        return true;
    }
}
