using System.Net;
using System.Runtime.CompilerServices;

namespace Flannel.Subnets;

/// <summary>
/// Turns a store's lease watch (<see cref="ISubnetStore.WatchLeasesAsync"/>) into the batches of remote lease
/// events a backend consumes (<c>INetwork.RunAsync</c>): flannel's <c>LeaseWatcher</c>, with its gaps fixed.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>This node's own lease is filtered out (matched by either of its subnets).</item>
/// <item>A snapshot becomes a diff against the cache: Added for new or changed leases, Removed for cached
/// leases missing from it. The first snapshot always yields a batch, even an empty one, so the backend knows
/// the initial state is complete.</item>
/// <item>A removal carries the full attributes cached when the lease was added (stores report only the
/// subnets of a deleted key); the removal of a lease never seen is dropped.</item>
/// <item>A re-delivery of a lease whose subnets and attributes did not change (every renewal) is dropped; flannel
/// re-delivered it as Added each time.</item>
/// <item>Later batches that end up empty are not yielded.</item>
/// </list>
/// Leases are identified by their subnet key. <see cref="Apply"/> is not thread-safe; <see cref="OwnLease"/> may be
/// changed from another thread (the keep-alive loop) while a watch is being tracked.
/// </remarks>
public sealed class RemoteLeaseTracker
{
    private readonly Dictionary<string, Lease> _remote = new(StringComparer.Ordinal);
    private volatile Lease? _ownLease;

    /// <summary>Creates a tracker that filters out <paramref name="ownLease"/>.</summary>
    public RemoteLeaseTracker(Lease? ownLease = null) => _ownLease = ownLease;

    /// <summary>
    /// This node's lease, never reported. Set it again when the keep-alive loop re-acquires a different subnet;
    /// a cached remote lease that now matches it is dropped from the cache silently.
    /// </summary>
    public Lease? OwnLease
    {
        get => _ownLease;
        set => _ownLease = value;
    }

    /// <summary>The remote leases currently known, by subnet key.</summary>
    public IReadOnlyDictionary<string, Lease> RemoteLeases => _remote;

    /// <summary>Applies one watch item and returns the resulting events (possibly none).</summary>
    public IReadOnlyList<LeaseEvent> Apply(LeaseWatchResult item)
    {
        ArgumentNullException.ThrowIfNull(item);
        Lease? own = _ownLease;
        var events = new List<LeaseEvent>();
        DropOwnFromCache(own, events);
        if (item.Snapshot is { } snapshot)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (Lease lease in snapshot)
            {
                if (IsOwn(lease, own))
                {
                    continue;
                }

                seen.Add(lease.Key);
                AddOrUpdate(lease, events);
            }

            foreach (KeyValuePair<string, Lease> cached in _remote.ToArray())
            {
                if (!seen.Contains(cached.Key))
                {
                    _remote.Remove(cached.Key);
                    events.Add(new LeaseEvent(LeaseEventType.Removed, cached.Value));
                }
            }

            return events;
        }

        foreach (LeaseEvent change in item.Events)
        {
            if (IsOwn(change.Lease, own))
            {
                continue;
            }

            if (change.Type == LeaseEventType.Added)
            {
                AddOrUpdate(change.Lease, events);
            }
            else if (_remote.Remove(change.Lease.Key, out Lease? cached))
            {
                events.Add(new LeaseEvent(LeaseEventType.Removed, cached));
            }
        }

        return events;
    }

    /// <summary>
    /// Tracks a whole watch stream: yields one batch per watch item that produced events, and always the
    /// batch of the first snapshot.
    /// </summary>
    public async IAsyncEnumerable<IReadOnlyList<LeaseEvent>> TrackAsync(
        IAsyncEnumerable<LeaseWatchResult> watch,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(watch);
        bool first = true;
        await foreach (LeaseWatchResult item in watch.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            IReadOnlyList<LeaseEvent> events = Apply(item);
            if (events.Count > 0 || (first && item.IsSnapshot))
            {
                first = false;
                yield return events;
            }
        }
    }

    private void AddOrUpdate(Lease lease, List<LeaseEvent> events)
    {
        string key = lease.Key;
        if (_remote.TryGetValue(key, out Lease? cached) && cached.Attributes == lease.Attributes)
        {
            // A renewal: same subnets and attributes. Keep the newer expiration and revision quietly.
            _remote[key] = lease;
            return;
        }

        _remote[key] = lease;
        events.Add(new LeaseEvent(LeaseEventType.Added, lease));
    }

    /// <summary>
    /// Forgets a cached remote lease that now overlaps this node's own lease (we re-acquired a subnet a peer held)
    /// and reports it as removed, so the backend deletes the route, neighbour and FDB entry that would otherwise
    /// keep sending our own pods' traffic to the old owner.
    /// </summary>
    private void DropOwnFromCache(Lease? own, List<LeaseEvent> events)
    {
        if (own is null || _remote.Count == 0)
        {
            return;
        }

        foreach (KeyValuePair<string, Lease> cached in _remote.ToArray())
        {
            if (IsOwn(cached.Value, own))
            {
                _remote.Remove(cached.Key);
                events.Add(new LeaseEvent(LeaseEventType.Removed, cached.Value));
            }
        }
    }

    private static bool IsOwn(Lease lease, Lease? own) =>
        own is not null
        && ((own.Subnet is { } s && lease.Subnet is { } ls && Same(s, ls))
            || (own.IPv6Subnet is { } s6 && lease.IPv6Subnet is { } ls6 && Same(s6, ls6)));

    private static bool Same(IPNetwork a, IPNetwork b) => a == b;
}
