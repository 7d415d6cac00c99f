using Flannel.Subnets;
using Google.Protobuf;
using Mvccpb;

namespace Flannel.Store.Etcd;

/// <summary>One lease key as read from etcd: the parsed lease plus what compare-and-swap and dedup need.</summary>
/// <param name="Key">The full etcd key.</param>
/// <param name="Lease">The parsed lease; <see cref="Lease.Revision"/> is the key's mod revision.</param>
/// <param name="EtcdLeaseId">The etcd lease the key is attached to; 0 for a reservation.</param>
/// <param name="Value">The raw value, compared byte for byte to skip unchanged re-deliveries.</param>
/// <param name="ValueIsValid">False when the key names a subnet but its value is not valid lease JSON.</param>
internal sealed record EtcdLeaseRecord(string Key, Lease Lease, long EtcdLeaseId, ByteString Value, bool ValueIsValid)
{
    public long ModRevision => Lease.Revision;

    public bool IsReservation => EtcdLeaseId == 0;

    /// <summary>
    /// Parses a key-value. Returns null when the key does not name a subnet. A key that names a subnet but
    /// holds a malformed value yields a record with <see cref="ValueIsValid"/> false (its subnet stays taken).
    /// </summary>
    public static EtcdLeaseRecord? TryParse(KeyValue kv, EtcdKeyLayout keys, DateTimeOffset now, TimeSpan ttl, out string? problem)
    {
        problem = null;
        string key = kv.Key.ToStringUtf8();
        if (!keys.TryParseLeaseKey(key, out var subnet, out var ipv6Subnet))
        {
            problem = "the key does not name a subnet (expected <prefix>/subnets/10.244.1.0-24 or 10.244.1.0-24&fd00::-64)";
            return null;
        }

        LeaseAttributes attributes;
        bool valid = true;
        try
        {
            attributes = LeaseJson.Deserialize(kv.Value.Span);
        }
        catch (FormatException ex)
        {
            problem = ex.Message;
            attributes = new LeaseAttributes();
            valid = false;
        }

        var lease = new Lease
        {
            Subnet = subnet,
            IPv6Subnet = ipv6Subnet,
            Attributes = attributes,

            // The remaining TTL of other nodes' leases is not read (flannel's one TimeToLive RPC per key): the
            // key disappears from etcd when its lease ends, and watchers see that as a removal.
            Expiration = kv.Lease == 0 ? null : now + ttl,
            Revision = kv.ModRevision,
            CreateRevision = kv.CreateRevision,
        };
        return new EtcdLeaseRecord(key, lease, kv.Lease, kv.Value, valid);
    }
}
