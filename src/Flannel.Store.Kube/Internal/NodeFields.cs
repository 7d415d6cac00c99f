using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Flannel.Networking;

namespace Flannel.Store.Kube.Internal;

/// <summary>Reads the flannel-relevant fields of a Node: its pod CIDRs and annotation values, strictly.</summary>
internal static class NodeFields
{
    public static string? Annotation(KubeNode node, string name) => node.Annotation(name);

    /// <summary>
    /// The node's pod CIDRs split by family, with flannel's rules: <c>spec.podCIDRs</c> when present (one or two
    /// entries), else <c>spec.podCIDR</c>. Returns false when no podCIDR is assigned yet.
    /// </summary>
    /// <exception cref="FormatException">Three or more CIDRs (flannel's text), or a value that is not a CIDR.</exception>
    public static bool TryGetPodCidrs(KubeNode node, out IPNetwork? ipv4, out IPNetwork? ipv6)
    {
        ipv4 = null;
        ipv6 = null;
        string name = node.Name;
        string? single = node.Spec.PodCidr;
        IReadOnlyList<string>? many = node.Spec.PodCidrs;
        if (string.IsNullOrEmpty(single) && (many is null || many.Count == 0))
        {
            return false;
        }

        if (many is null || many.Count == 0)
        {
            Assign(ParseCidr(single!, name, "spec.podCIDR"), ref ipv4, ref ipv6);
            return true;
        }

        if (many.Count >= 3)
        {
            throw new FormatException($"node \"{name}\" pod cidrs should be IPv4/IPv6 only or dualstack");
        }

        for (int i = 0; i < many.Count; i++)
        {
            Assign(ParseCidr(many[i], name, $"spec.podCIDRs[{i}]"), ref ipv4, ref ipv6);
        }

        return true;
    }

    /// <summary>The pod CIDRs as one string for logs: <c>10.244.1.0/24,fd00:10:244:1::/64</c>.</summary>
    public static string DescribePodCidrs(KubeNode node) =>
        node.Spec.PodCidrs is { Count: > 0 } many ? string.Join(',', many) : node.Spec.PodCidr ?? "";

    /// <summary>
    /// Parses a CIDR the way Go's <c>net.ParseCIDR</c> does for flannel: the host bits are dropped
    /// (<c>10.244.1.7/24</c> is <c>10.244.1.0/24</c>).
    /// </summary>
    public static IPNetwork ParseCidr(string text, string nodeName, string field)
    {
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash > 0
            && TryParseAddress(text.AsSpan(0, slash), out IPAddress? address)
            && int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int prefix)
            && prefix <= IPNetworkMath.BitLength(address.AddressFamily))
        {
            return new IPNetwork(IPNetworkMath.Mask(address, prefix), prefix);
        }

        throw new FormatException($"node \"{nodeName}\": {field} \"{text}\" is not a CIDR such as 10.244.1.0/24");
    }

    /// <summary>Parses an IPv4 or IPv6 address of the given family, refusing the loose forms .NET accepts (<c>"1"</c>, <c>"1.2.3"</c>).</summary>
    public static bool TryParseAddress(string? text, AddressFamily family, [NotNullWhen(true)] out IPAddress? address)
    {
        address = null;
        return text is not null && TryParseAddress(text.AsSpan(), out address) && address.AddressFamily == family;
    }

    private static bool TryParseAddress(ReadOnlySpan<char> text, [NotNullWhen(true)] out IPAddress? address)
    {
        address = null;
        if (text.Contains(':'))
        {
            // No zone ("%eth0") in a public IP or a CIDR.
            return !text.Contains('%') && IPAddress.TryParse(text, out address) && address.AddressFamily == AddressFamily.InterNetworkV6;
        }

        // Go accepts only the dotted quad; .NET would also take "10" or "10.1" or hex parts.
        if (text.Count('.') != 3)
        {
            return false;
        }

        foreach (char c in text)
        {
            if (c != '.' && !char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        return IPAddress.TryParse(text, out address) && address.AddressFamily == AddressFamily.InterNetwork;
    }

    /// <summary>True when <paramref name="text"/> is one well-formed JSON value (backend data must be).</summary>
    public static bool IsJson(string text)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(text);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>flannel's <c>containsCIDR</c>: the outer prefix is no longer than the inner one and holds its first address.</summary>
    public static bool Contains(IPNetwork outer, IPNetwork inner) =>
        outer.PrefixLength <= inner.PrefixLength && outer.Contains(inner.BaseAddress);

    private static void Assign(IPNetwork cidr, ref IPNetwork? ipv4, ref IPNetwork? ipv6)
    {
        if (cidr.BaseAddress.AddressFamily == AddressFamily.InterNetwork)
        {
            ipv4 = cidr;
        }
        else
        {
            ipv6 = cidr;
        }
    }
}
