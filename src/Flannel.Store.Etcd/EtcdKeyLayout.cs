using System.Net;
using Flannel.Subnets;

namespace Flannel.Store.Etcd;

/// <summary>
/// flannel's etcd key layout under a prefix (default <c>/coreos.com/network</c>):
/// <code>
/// &lt;prefix&gt;/config                               the network config (JSON)
/// &lt;prefix&gt;/subnets/10.244.1.0-24                  an IPv4 lease
/// &lt;prefix&gt;/subnets/10.244.1.0-24&amp;fd00:10:244:1::-64  a dual-stack lease
/// </code>
/// </summary>
internal sealed class EtcdKeyLayout
{
    public EtcdKeyLayout(string prefix)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);

        // Go's path.Join: one slash between the parts, no trailing slash.
        string trimmed = "/" + prefix.Trim('/');
        Prefix = trimmed == "/" ? string.Empty : trimmed;
        ConfigKey = Prefix + "/config";
        SubnetsPrefix = Prefix + "/subnets/";
    }

    /// <summary>The normalised prefix without a trailing slash.</summary>
    public string Prefix { get; }

    /// <summary><c>&lt;prefix&gt;/config</c>.</summary>
    public string ConfigKey { get; }

    /// <summary><c>&lt;prefix&gt;/subnets/</c>: every lease key starts with it.</summary>
    public string SubnetsPrefix { get; }

    /// <summary>The etcd key of a lease.</summary>
    public string LeaseKey(IPNetwork? subnet, IPNetwork? ipv6Subnet) => SubnetsPrefix + SubnetKey.Format(subnet, ipv6Subnet);

    /// <summary>A range request for every key under <paramref name="prefix"/> (etcd's prefix range: the end is the prefix with its last byte incremented).</summary>
    public static Etcdserverpb.RangeRequest PrefixRange(string prefix) =>
        new() { Key = Google.Protobuf.ByteString.CopyFromUtf8(prefix), RangeEnd = PrefixEnd(prefix) };

    /// <summary>The range end that makes a range (or a watch) cover every key starting with <paramref name="prefix"/>.</summary>
    public static Google.Protobuf.ByteString PrefixEnd(string prefix)
    {
        byte[] end = System.Text.Encoding.UTF8.GetBytes(prefix);
        for (int i = end.Length - 1; i >= 0; i--)
        {
            if (end[i] < 0xff)
            {
                end[i]++;
                return Google.Protobuf.ByteString.CopyFrom(end, 0, i + 1);
            }
        }

        // Every byte is 0xff: "\0" means "to the end of the key space".
        return Google.Protobuf.ByteString.CopyFrom(0);
    }

    /// <summary>Parses a lease key read from etcd; false when it does not name a subnet.</summary>
    public bool TryParseLeaseKey(string key, out IPNetwork? subnet, out IPNetwork? ipv6Subnet)
    {
        subnet = null;
        ipv6Subnet = null;
        return key.StartsWith(SubnetsPrefix, StringComparison.Ordinal)
            && key.IndexOf('/', SubnetsPrefix.Length) < 0
            && SubnetKey.TryParse(key[SubnetsPrefix.Length..], out subnet, out ipv6Subnet);
    }
}
