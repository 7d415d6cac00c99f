using Flannel.Subnets;

namespace Flannel.Agent;

/// <summary>
/// Turns a store's watch (snapshots and incremental events) into the batches a backend programs (flannel's
/// <c>LeaseWatcher</c>): the node's own lease is filtered out, a removal carries the cached attributes, a snapshot is
/// diffed against what was known (so leases deleted while the watch was down are removed), and re-deliveries of an
/// unchanged lease (every renewal) are dropped.
/// </summary>
internal sealed class RemoteLeaseSet
{
    private readonly Dictionary<string, Lease> _leases = new(StringComparer.Ordinal);

    public int Count => _leases.Count;

    public IReadOnlyCollection<Lease> Leases => _leases.Values;

    public IReadOnlyList<LeaseEvent> Apply(LeaseWatchResult item, Lease? ownLease)
    {
        ArgumentNullException.ThrowIfNull(item);
        var batch = new List<LeaseEvent>();
        if (item.Snapshot is IReadOnlyList<Lease> snapshot)
        {
            var current = new Dictionary<string, Lease>(StringComparer.Ordinal);
            foreach (Lease lease in snapshot)
            {
                if (!IsOwn(lease, ownLease))
                {
                    current[lease.Key] = lease;
                }
            }

            foreach ((string key, Lease cached) in _leases)
            {
                if (!current.ContainsKey(key))
                {
                    batch.Add(new LeaseEvent(LeaseEventType.Removed, cached));
                }
            }

            foreach ((string key, Lease lease) in current)
            {
                if (!_leases.TryGetValue(key, out Lease? cached) || cached.Attributes != lease.Attributes)
                {
                    batch.Add(new LeaseEvent(LeaseEventType.Added, lease));
                }
            }

            _leases.Clear();
            foreach ((string key, Lease lease) in current)
            {
                _leases[key] = lease;
            }

            return batch;
        }

        foreach (LeaseEvent change in item.Events)
        {
            Lease lease = change.Lease;
            if (IsOwn(lease, ownLease))
            {
                continue;
            }

            string key = lease.Key;
            if (change.Type == LeaseEventType.Added)
            {
                bool changed = !_leases.TryGetValue(key, out Lease? cached) || cached.Attributes != lease.Attributes;
                _leases[key] = lease;
                if (changed)
                {
                    batch.Add(change);
                }
            }
            else if (_leases.Remove(key, out Lease? cached))
            {
                batch.Add(new LeaseEvent(LeaseEventType.Removed, cached));
            }
        }

        return batch;
    }

    private static bool IsOwn(Lease lease, Lease? own) =>
        own is not null
        && ((lease.Subnet is not null && lease.Subnet == own.Subnet)
            || (lease.IPv6Subnet is not null && lease.IPv6Subnet == own.IPv6Subnet));
}
