using System.Collections.Immutable;
using System.Net;
using Flannel.Configuration;
using Flannel.Networking;
using Flannel.Subnets;

namespace Flannel.Agent;

/// <summary>
/// Turns a store's lease watch (<see cref="ISubnetStore.WatchLeasesAsync"/>) into the batches of remote lease
/// events a backend consumes (<c>INetwork.RunAsync</c>): flannel's <c>LeaseWatcher</c>, with its gaps fixed, and an
/// admission check flannel does not have.
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
/// <item>Only admitted leases reach the backend (flannel programs whatever is in the store). A lease is admitted when
/// its subnets lie inside the configured networks, its public IP is not this node's, the backend's own rules
/// (<see cref="ILeaseAdmission"/>) accept it, and its subnets overlap neither this node's subnet nor the subnet of
/// an admitted lease. On an overlap the admitted lease stays; among new leases the one created first (lower
/// <see cref="Lease.CreateRevision"/>, then first seen) wins. A rejected lease is reported once per rule through
/// the rejection callback and re-checked when the lease blocking it goes away or the lease changes.</item>
/// </list>
/// Leases are identified by their subnet key. <see cref="Apply"/> is not thread-safe; <see cref="OwnLease"/> may be
/// changed from another thread (the keep-alive loop) while a watch is being tracked.
/// </remarks>
internal sealed class RemoteLeaseTracker
{
    private readonly Dictionary<string, Candidate> _candidates = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Lease> _remote = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LeaseRejection> _rejected = new(StringComparer.Ordinal);
    private readonly SubnetIndex _admittedSubnets = new();
    private readonly IPNetwork? _network;
    private readonly IPNetwork? _ipv6Network;
    private readonly bool _checkNetworks;
    private readonly ILeaseAdmission? _backendRules;
    private readonly Action<Lease, LeaseRejection>? _onRejected;
    private volatile Lease? _ownLease;
    private Lease? _appliedOwnLease;
    private long _sequence;

    /// <summary>Creates a tracker that filters out <paramref name="ownLease"/> and admits only leases that fit.</summary>
    /// <param name="ownLease">This node's lease.</param>
    /// <param name="config">The network config whose <c>Network</c> and <c>IPv6Network</c> every subnet must lie in; null to skip that rule.</param>
    /// <param name="backendRules">The backend's own rules, or null.</param>
    /// <param name="onRejected">Called once each time a lease is rejected, or rejected by another rule than before.</param>
    public RemoteLeaseTracker(Lease? ownLease, NetworkConfig? config = null, ILeaseAdmission? backendRules = null, Action<Lease, LeaseRejection>? onRejected = null)
    {
        _ownLease = ownLease;
        _appliedOwnLease = ownLease;
        _checkNetworks = config is not null;
        _network = config?.Network;
        _ipv6Network = config?.IPv6Network;
        _backendRules = backendRules;
        _onRejected = onRejected;
    }

    /// <summary>
    /// This node's lease, never reported. Set it again when the keep-alive loop re-acquires a different subnet;
    /// at the next <see cref="Apply"/> a cached remote lease that now matches it is dropped from the cache silently,
    /// one that now overlaps it is removed and rejected, and rejected leases are checked again.
    /// </summary>
    public Lease? OwnLease
    {
        get => _ownLease;
        set => _ownLease = value;
    }

    /// <summary>The remote leases admitted and reported to the backend, by subnet key.</summary>
    public IReadOnlyDictionary<string, Lease> RemoteLeases => _remote;

    /// <summary>The remote leases currently rejected, by subnet key, with the rule each broke.</summary>
    public IReadOnlyDictionary<string, LeaseRejection> RejectedLeases => _rejected;

    /// <summary>Applies one watch item and returns the resulting events (possibly none).</summary>
    public IReadOnlyList<LeaseEvent> Apply(LeaseWatchResult item)
    {
        ArgumentNullException.ThrowIfNull(item);
        Lease? own = _ownLease;
        var events = new List<LeaseEvent>();
        var dirty = new HashSet<string>(StringComparer.Ordinal);
        if (!ReferenceEquals(own, _appliedOwnLease))
        {
            // Our subnet or public IP changed: every remote lease is checked again.
            _appliedOwnLease = own;
            DropOwnFromCache(own, events);
            dirty.UnionWith(_candidates.Keys);
        }

        if (item.Snapshot is { } snapshot)
        {
            // Sized for the snapshot, not grown by doubling (see FabricProber.SetPeers).
            _candidates.EnsureCapacity(snapshot.Count);
            _remote.EnsureCapacity(snapshot.Count);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (Lease lease in snapshot)
            {
                if (!IsOwn(lease, own))
                {
                    seen.Add(lease.Key);
                    Offer(lease, dirty);
                }
            }

            foreach (string key in _candidates.Keys)
            {
                if (!seen.Contains(key))
                {
                    dirty.Add(key);
                }
            }

            foreach (string key in dirty)
            {
                if (!seen.Contains(key))
                {
                    _candidates.Remove(key);
                }
            }
        }
        else
        {
            foreach (LeaseEvent change in item.Events)
            {
                if (IsOwn(change.Lease, own))
                {
                    continue;
                }

                if (change.Type == LeaseEventType.Added)
                {
                    Offer(change.Lease, dirty);
                }
                else if (_candidates.Remove(change.Lease.Key))
                {
                    dirty.Add(change.Lease.Key);
                }
            }
        }

        if (dirty.Count > 0)
        {
            Admit(dirty, own, events);
        }

        return events;
    }

    /// <summary>Records a lease from the store; marks it for a check unless it is a renewal (same attributes).</summary>
    private void Offer(Lease lease, HashSet<string> dirty)
    {
        string key = lease.Key;
        if (_candidates.TryGetValue(key, out Candidate? candidate))
        {
            bool renewal = candidate.Lease.Attributes == lease.Attributes;
            candidate.Lease = lease;
            if (renewal)
            {
                // Keep the newer expiration and revision quietly; an admitted lease stays admitted, a rejected one
                // stays rejected until what blocks it changes.
                if (_remote.ContainsKey(key))
                {
                    _remote[key] = lease;
                }

                return;
            }
        }
        else
        {
            _candidates[key] = new Candidate(lease, ++_sequence);
        }

        dirty.Add(key);
    }

    /// <summary>
    /// Decides admission for the changed keys (in priority order: admitted first, then by creation), and, when
    /// admitted subnets were freed, for every rejected lease again.
    /// </summary>
    private void Admit(HashSet<string> dirty, Lease? own, List<LeaseEvent> events)
    {
        bool freed = Decide(dirty, own, events);
        if (freed && _rejected.Count > 0)
        {
            var retry = new HashSet<string>(_rejected.Keys.Where(k => !dirty.Contains(k) && _candidates.ContainsKey(k)), StringComparer.Ordinal);
            if (retry.Count > 0)
            {
                Decide(retry, own, events);
            }
        }
    }

    /// <summary>Decides admission for <paramref name="keys"/>; returns true when an admitted subnet was freed.</summary>
    private bool Decide(HashSet<string> keys, Lease? own, List<LeaseEvent> events)
    {
        var order = new List<(string Key, Lease? Admitted, Candidate? Candidate)>(keys.Count);
        foreach (string key in keys)
        {
            Lease? admitted = _remote.GetValueOrDefault(key);
            if (admitted is not null)
            {
                _admittedSubnets.Remove(admitted);
            }

            order.Add((key, admitted, _candidates.GetValueOrDefault(key)));
        }

        // Removals first (they free subnets), then what is admitted already (it keeps its subnet), then newcomers
        // in creation order.
        order.Sort(static (a, b) =>
        {
            int byRank = Rank(a).CompareTo(Rank(b));
            if (byRank != 0 || a.Candidate is null || b.Candidate is null)
            {
                return byRank;
            }

            int byCreation = CreationOrder(a.Candidate.Lease).CompareTo(CreationOrder(b.Candidate.Lease));
            return byCreation != 0 ? byCreation : a.Candidate.FirstSeen.CompareTo(b.Candidate.FirstSeen);
        });

        bool freed = false;
        foreach ((string key, Lease? admitted, Candidate? candidate) in order)
        {
            if (candidate is null)
            {
                // Gone from the store.
                _rejected.Remove(key);
                if (admitted is not null)
                {
                    _remote.Remove(key);
                    events.Add(new LeaseEvent(LeaseEventType.Removed, admitted));
                    freed = true;
                }

                continue;
            }

            Lease lease = candidate.Lease;
            LeaseRejection? rejection = Check(lease, own);
            if (rejection is null)
            {
                _admittedSubnets.Add(lease, key);
                _remote[key] = lease;
                _rejected.Remove(key);
                candidate.ReportedRule = null;
                if (admitted is null || admitted.Attributes != lease.Attributes)
                {
                    events.Add(new LeaseEvent(LeaseEventType.Added, lease));
                }

                continue;
            }

            _rejected[key] = rejection;
            if (admitted is not null)
            {
                _remote.Remove(key);
                events.Add(new LeaseEvent(LeaseEventType.Removed, admitted));
                freed = true;
            }

            if (candidate.ReportedRule != rejection.Rule)
            {
                candidate.ReportedRule = rejection.Rule;
                _onRejected?.Invoke(lease, rejection);
            }
        }

        return freed;
    }

    /// <summary>The admission rules, cheapest and most specific first.</summary>
    private LeaseRejection? Check(Lease lease, Lease? own)
    {
        if (_checkNetworks)
        {
            if (OutsideNetwork(lease.Subnet, _network, "Network") is { } outside)
            {
                return outside;
            }

            if (OutsideNetwork(lease.IPv6Subnet, _ipv6Network, "IPv6Network") is { } outside6)
            {
                return outside6;
            }
        }

        if (own is not null)
        {
            IPAddress publicIP = lease.Attributes.PublicIP;
            if ((!publicIP.Equals(IPAddress.Any) && publicIP.Equals(own.Attributes.PublicIP))
                || (lease.Attributes.PublicIPv6 is { } publicIPv6 && publicIPv6.Equals(own.Attributes.PublicIPv6)))
            {
                return new LeaseRejection(
                    LeaseRejection.OwnPublicIP,
                    $"PublicIP {(publicIP.Equals(own.Attributes.PublicIP) ? publicIP : lease.Attributes.PublicIPv6)} is this node's own address");
            }
        }

        if (_backendRules?.Check(lease) is { } backendRejection)
        {
            return backendRejection;
        }

        foreach (IPNetwork? subnet in (IPNetwork?[])[lease.Subnet, lease.IPv6Subnet])
        {
            if (subnet is not { } value)
            {
                continue;
            }

            IPNetwork? ownSubnet = value.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? own?.Subnet : own?.IPv6Subnet;
            if (ownSubnet is { } mine && IPNetworkMath.Overlaps(value, mine))
            {
                return new LeaseRejection(LeaseRejection.Overlap, $"subnet {value} overlaps this node's subnet {mine}");
            }

            if (_admittedSubnets.FindOverlap(value) is { } other)
            {
                return new LeaseRejection(LeaseRejection.Overlap, $"subnet {value} overlaps {other.Subnet} of the earlier lease {other.Key}");
            }
        }

        return null;
    }

    private static LeaseRejection? OutsideNetwork(IPNetwork? subnet, IPNetwork? network, string field)
    {
        if (subnet is not { } value)
        {
            return null;
        }

        if (network is not { } net)
        {
            // This node runs no such family and programs nothing for it.
            return null;
        }

        // Strictly inside: a lease as large as the whole network would take every other node's subnet.
        return IPNetworkMath.Contains(net, value) && value.PrefixLength > net.PrefixLength
            ? null
            : new LeaseRejection(LeaseRejection.OutsideNetwork, $"subnet {value} is not inside {field} {net}");
    }

    private static int Rank((string Key, Lease? Admitted, Candidate? Candidate) entry) =>
        entry.Candidate is null ? 0 : entry.Admitted is not null ? 1 : 2;

    private static long CreationOrder(Lease lease) => lease.CreateRevision > 0 ? lease.CreateRevision : long.MaxValue;

    /// <summary>
    /// Forgets a cached remote lease that now has this node's own subnet (we re-acquired a subnet a peer held)
    /// and reports it as removed, so the backend deletes the route, neighbour and FDB entry that would otherwise
    /// keep sending our own pods' traffic to the old owner.
    /// </summary>
    private void DropOwnFromCache(Lease? own, List<LeaseEvent> events)
    {
        if (own is null || _candidates.Count == 0)
        {
            return;
        }

        foreach (KeyValuePair<string, Candidate> cached in _candidates.ToArray())
        {
            if (IsOwn(cached.Value.Lease, own))
            {
                _candidates.Remove(cached.Key);
                _rejected.Remove(cached.Key);
                if (_remote.Remove(cached.Key, out Lease? admitted))
                {
                    _admittedSubnets.Remove(admitted);
                    events.Add(new LeaseEvent(LeaseEventType.Removed, admitted));
                }
            }
        }
    }

    private static bool IsOwn(Lease lease, Lease? own) =>
        own is not null
        && ((own.Subnet is { } s && lease.Subnet is { } ls && s == ls)
            || (own.IPv6Subnet is { } s6 && lease.IPv6Subnet is { } ls6 && s6 == ls6));

    private sealed class Candidate(Lease lease, long firstSeen)
    {
        public Lease Lease { get; set; } = lease;

        public long FirstSeen { get; } = firstSeen;

        /// <summary>The rule last reported for this lease, so each rejection is reported once.</summary>
        public string? ReportedRule { get; set; }
    }

    /// <summary>
    /// The admitted subnets as address ranges, per family. Admitted subnets never overlap each other, so the only
    /// range that can overlap a candidate is the one with the greatest start at or below the candidate's end:
    /// one O(log n) lookup instead of a scan over every peer.
    /// </summary>
    /// <remarks>
    /// The builder of an immutable sorted set, for its O(log n) search by position (<c>IndexOf</c>, the indexer). A
    /// <see cref="SortedSet{T}"/> has no floor search, and its <c>GetViewBetween</c> counts every element of the view
    /// when it is made: a lookup was O(n), and admitting a 5,000-lease snapshot took 40-70 ms of a native flanneld's
    /// cold start. The builder, never frozen into a set, changes its AVL tree in place; the immutable set copied
    /// the path to every insertion (about 13 nodes at 5,000 peers), 10-13 ms of that cold start.
    /// </remarks>
    private sealed class SubnetIndex
    {
        private readonly ImmutableSortedSet<Entry>.Builder _v4 = ImmutableSortedSet.CreateBuilder(EntryComparer.Instance);
        private readonly ImmutableSortedSet<Entry>.Builder _v6 = ImmutableSortedSet.CreateBuilder(EntryComparer.Instance);

        public void Add(Lease lease, string key)
        {
            foreach (IPNetwork? subnet in (IPNetwork?[])[lease.Subnet, lease.IPv6Subnet])
            {
                if (subnet is { } value)
                {
                    For(value).Add(new Entry(IPNetworkMath.First(value), value, key));
                }
            }
        }

        public void Remove(Lease lease)
        {
            foreach (IPNetwork? subnet in (IPNetwork?[])[lease.Subnet, lease.IPv6Subnet])
            {
                if (subnet is { } value)
                {
                    For(value).Remove(new Entry(IPNetworkMath.First(value), value, string.Empty));
                }
            }
        }

        public Entry? FindOverlap(IPNetwork subnet)
        {
            ImmutableSortedSet<Entry>.Builder set = For(subnet);
            UInt128 first = IPNetworkMath.First(subnet);
            UInt128 last = IPNetworkMath.Last(subnet);

            // The range starting at our end, or else the one before where such a range would go.
            int index = set.IndexOf(new Entry(last, subnet, string.Empty));
            if (index < 0)
            {
                index = ~index - 1;
            }

            if (index < 0)
            {
                return null;
            }

            Entry below = set[index];
            return IPNetworkMath.Last(below.Subnet) >= first ? below : null;
        }

        private ImmutableSortedSet<Entry>.Builder For(IPNetwork subnet) =>
            subnet.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? _v4 : _v6;

        /// <summary>An admitted subnet, ordered by its first address. A value held in the set's node rather than an
        /// object of its own that also kept its last address: 48 bytes less per peer (240 KB at 5,000).</summary>
        public readonly record struct Entry(UInt128 First, IPNetwork Subnet, string Key);

        private sealed class EntryComparer : IComparer<Entry>
        {
            public static readonly EntryComparer Instance = new();

            public int Compare(Entry x, Entry y) => x.First.CompareTo(y.First);
        }
    }
}
