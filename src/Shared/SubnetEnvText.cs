// Shared source: compiled into Flannel.Core (flanneld's read-back on restart) and the flannel CNI plugin (which
// references no Flannel package), so subnet.env is read one way. Internal in each; keep it dependency-free.
namespace Flannel;

/// <summary>
/// The text layer of flannel's subnet.env, shared by its two readers: which variables a file sets and the
/// comma-separated entries of a value. What a bad value means is each reader's policy, not this file's:
/// flanneld drops it and keeps the rest (the file is its own earlier output, and a restart must not fail on it),
/// the CNI plugin fails the pod operation with flannel's text.
/// </summary>
internal static class SubnetEnvText
{
    public const string Network = "FLANNEL_NETWORK";
    public const string Subnet = "FLANNEL_SUBNET";
    public const string IPv6Network = "FLANNEL_IPV6_NETWORK";
    public const string IPv6Subnet = "FLANNEL_IPV6_SUBNET";
    public const string Mtu = "FLANNEL_MTU";
    public const string IPMasq = "FLANNEL_IPMASQ";

    /// <summary>
    /// Reads <c>KEY=VALUE</c> lines as flanneld's dotenv reader does: blank lines and <c>#</c> comments are skipped,
    /// an <c>export </c> prefix and single or double quotes around the value are dropped, keys and values are
    /// trimmed, a line without a key is ignored, and a later key overrides an earlier one.
    /// </summary>
    public static Dictionary<string, string> ReadVariables(string text)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string rawLine in text.Split('\n'))
        {
            ReadOnlySpan<char> line = rawLine.AsSpan().Trim();
            if (line.IsEmpty || line[0] == '#')
            {
                continue;
            }

            if (line.StartsWith("export ", StringComparison.Ordinal))
            {
                line = line["export ".Length..].TrimStart();
            }

            int equals = line.IndexOf('=');
            if (equals <= 0)
            {
                continue;
            }

            string key = line[..equals].Trim().ToString();
            ReadOnlySpan<char> value = line[(equals + 1)..].Trim();
            if (value.Length >= 2 && (value[0] is '"' or '\'') && value[^1] == value[0])
            {
                value = value[1..^1];
            }

            values[key] = value.ToString();
        }

        return values;
    }

    /// <summary>
    /// The entries of a CIDR value, each trimmed: flannel reads the network and subnet variables as comma lists
    /// (<c>FLANNEL_NETWORK=10.244.0.0/16,10.245.0.0/16</c>).
    /// </summary>
    public static string[] SplitEntries(string value) =>
        value.Split(',', StringSplitOptions.TrimEntries);
}
