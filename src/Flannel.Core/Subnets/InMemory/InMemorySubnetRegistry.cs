using System.Net;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Flannel.Configuration;

namespace Flannel.Subnets.InMemory;

/// <summary>
/// The shared "cluster" behind <see cref="InMemorySubnetStore"/>: the network config and every node's lease,
/// with the semantics of flannel's etcd layout. Several agents in one process share one registry, each
/// through its own store.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Every change bumps a global revision, stored on the lease (<see cref="Lease.Revision"/>) as etcd's
/// mod revision is; updates and deletes are compare-and-swap on it.</item>
/// <item>Leases are keyed by subnet (<see cref="Lease.Key"/>); creation succeeds only if the key is absent.</item>
/// <item>A lease with a TTL expires at <see cref="Lease.Expiration"/>, measured with the registry's
/// <see cref="TimeProvider"/>; a lease created without a TTL is a reservation and never expires.</item>
/// <item>A watcher first gets a snapshot, then every change in order. Like an etcd DELETE, a removal
/// event carries only the subnets; consumers keep the attributes themselves (the agent fills removals in from its remote-lease set).</item>
/// </list>
/// All members are thread-safe.
/// </remarks>
public sealed class InMemorySubnetRegistry : IDisposable
{
    private readonly Lock _lock = new();
    private readonly TimeProvider _timeProvider;
    private readonly Dictionary<string, Lease> _leases = new(StringComparer.Ordinal);
    private readonly List<Channel<LeaseWatchResult>> _watchers = [];
    private readonly ITimer _expiryTimer;
    private string _networkConfig;
    private long _revision;
    private bool _disposed;

    /// <summary>Creates a registry holding <paramref name="networkConfigJson"/> (net-conf.json / etcd's <c>config</c> value).</summary>
    public InMemorySubnetRegistry(string networkConfigJson, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(networkConfigJson);
        _networkConfig = networkConfigJson;
        _timeProvider = timeProvider ?? TimeProvider.System;
        _expiryTimer = _timeProvider.CreateTimer(static state => ((InMemorySubnetRegistry)state!).ExpireDue(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>The clock that drives lease expiry.</summary>
    public TimeProvider TimeProvider => _timeProvider;

    /// <summary>The current revision: the number of changes made so far.</summary>
    public long Revision
    {
        get
        {
            lock (_lock)
            {
                return _revision;
            }
        }
    }

    /// <summary>The number of active watches (tests wait on it instead of sleeping).</summary>
    internal int WatcherCount
    {
        get
        {
            lock (_lock)
            {
                return _watchers.Count;
            }
        }
    }

    /// <summary>Test hook: runs before a create is applied, outside the lock, to simulate a competing writer.</summary>
    internal Action<string>? BeforeCreate { get; set; }

    /// <summary>The raw network config text.</summary>
    public string NetworkConfigJson
    {
        get
        {
            lock (_lock)
            {
                return _networkConfig;
            }
        }
    }

    /// <summary>Replaces the network config (as <c>etcdctl put &lt;prefix&gt;/config</c> would).</summary>
    public void SetNetworkConfig(string networkConfigJson)
    {
        ArgumentNullException.ThrowIfNull(networkConfigJson);
        lock (_lock)
        {
            _networkConfig = networkConfigJson;
        }
    }

    /// <summary>Parses and validates the config as flannel's etcd subnet manager does.</summary>
    /// <exception cref="NetworkConfigException">The config is invalid.</exception>
    public NetworkConfig GetNetworkConfig() => NetworkConfig.Parse(NetworkConfigJson).Validate();

    /// <summary>Every live lease, and the revision they were read at.</summary>
    public IReadOnlyList<Lease> ListLeases(out long revision)
    {
        lock (_lock)
        {
            ExpireLocked();
            revision = _revision;
            return [.. _leases.Values];
        }
    }

    /// <summary>Every live lease.</summary>
    public IReadOnlyList<Lease> ListLeases() => ListLeases(out _);

    /// <summary>The live lease under <paramref name="key"/>, or null.</summary>
    public Lease? GetLease(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        lock (_lock)
        {
            ExpireLocked();
            return _leases.GetValueOrDefault(key);
        }
    }

    /// <summary>
    /// Creates a lease if no lease has its key (etcd: <c>Txn If(Version(key) == 0) Then(Put)</c>). A null
    /// <paramref name="ttl"/> creates a reservation. Returns the stored lease (with revision and expiration),
    /// or null when the key already exists.
    /// </summary>
    public Lease? TryCreate(IPNetwork? subnet, IPNetwork? ipv6Subnet, LeaseAttributes attributes, TimeSpan? ttl)
    {
        ArgumentNullException.ThrowIfNull(attributes);
        string key = SubnetKey.Format(subnet, ipv6Subnet);
        BeforeCreate?.Invoke(key);
        lock (_lock)
        {
            ThrowIfDisposed();
            ExpireLocked();
            if (_leases.ContainsKey(key))
            {
                return null;
            }

            return PutLocked(key, subnet, ipv6Subnet, attributes, ttl);
        }
    }

    /// <summary>
    /// Replaces the lease under <paramref name="key"/> if its revision is still <paramref name="expectedRevision"/>
    /// (compare-and-swap). A null <paramref name="ttl"/> makes it a reservation. Returns the stored lease, or null
    /// when the lease is gone or was changed by someone else.
    /// </summary>
    public Lease? TryUpdate(string key, long expectedRevision, LeaseAttributes attributes, TimeSpan? ttl)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(attributes);
        lock (_lock)
        {
            ThrowIfDisposed();
            ExpireLocked();
            if (!_leases.TryGetValue(key, out Lease? current) || current.Revision != expectedRevision)
            {
                return null;
            }

            return PutLocked(key, current.Subnet, current.IPv6Subnet, attributes, ttl);
        }
    }

    /// <summary>
    /// Deletes the lease under <paramref name="key"/>; when <paramref name="expectedRevision"/> is given, only if it
    /// still has that revision. Returns false when nothing was deleted.
    /// </summary>
    public bool TryDelete(string key, long? expectedRevision = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        lock (_lock)
        {
            ThrowIfDisposed();
            ExpireLocked();
            if (!_leases.TryGetValue(key, out Lease? current) || (expectedRevision is { } expected && current.Revision != expected))
            {
                return false;
            }

            RemoveLocked(key, current);
            return true;
        }
    }

    /// <summary>
    /// Watches every lease: first a snapshot of the live leases, then each change as one event, in revision
    /// order. Ends when <paramref name="cancellationToken"/> is cancelled or the registry is disposed.
    /// </summary>
    public async IAsyncEnumerable<LeaseWatchResult> WatchAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var channel = Channel.CreateUnbounded<LeaseWatchResult>(new UnboundedChannelOptions { SingleReader = true });
        LeaseWatchResult snapshot;
        lock (_lock)
        {
            ThrowIfDisposed();
            ExpireLocked();
            snapshot = LeaseWatchResult.FromSnapshot([.. _leases.Values]);
            _watchers.Add(channel);
        }

        try
        {
            yield return snapshot;
            while (await channel.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (channel.Reader.TryRead(out LeaseWatchResult? item))
                {
                    yield return item;
                }
            }
        }
        finally
        {
            lock (_lock)
            {
                _watchers.Remove(channel);
            }
        }
    }

    /// <summary>Stops the expiry timer and ends every watch.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (Channel<LeaseWatchResult> watcher in _watchers)
            {
                watcher.Writer.TryComplete();
            }

            _watchers.Clear();
        }

        _expiryTimer.Dispose();
    }

    private Lease PutLocked(string key, IPNetwork? subnet, IPNetwork? ipv6Subnet, LeaseAttributes attributes, TimeSpan? ttl)
    {
        _revision++;
        var lease = new Lease
        {
            Subnet = subnet,
            IPv6Subnet = ipv6Subnet,
            Attributes = attributes,
            Expiration = ttl is { } t ? _timeProvider.GetUtcNow() + t : null,
            Revision = _revision,

            // As etcd's create revision: the revision the key was created at, kept by every later write and new
            // again after a delete. The agent keeps the earlier of two overlapping leases by it.
            CreateRevision = _leases.TryGetValue(key, out Lease? existing) ? existing.CreateRevision : _revision,
        };
        _leases[key] = lease;
        PublishLocked(LeaseWatchResult.FromEvents([new LeaseEvent(LeaseEventType.Added, lease)]));
        ScheduleExpiryLocked();
        return lease;
    }

    private void RemoveLocked(string key, Lease current)
    {
        _revision++;
        _leases.Remove(key);

        // As etcd's DELETE: only the key is known, so only the subnets are reported.
        var removed = new Lease { Subnet = current.Subnet, IPv6Subnet = current.IPv6Subnet, Attributes = new LeaseAttributes(), Revision = _revision };
        PublishLocked(LeaseWatchResult.FromEvents([new LeaseEvent(LeaseEventType.Removed, removed)]));
    }

    private void PublishLocked(LeaseWatchResult item)
    {
        foreach (Channel<LeaseWatchResult> watcher in _watchers)
        {
            watcher.Writer.TryWrite(item); // unbounded: always succeeds
        }
    }

    private void ExpireDue()
    {
        lock (_lock)
        {
            if (!_disposed)
            {
                ExpireLocked();
            }
        }
    }

    private void ExpireLocked()
    {
        DateTimeOffset now = _timeProvider.GetUtcNow();
        List<KeyValuePair<string, Lease>>? expired = null;
        foreach (KeyValuePair<string, Lease> entry in _leases)
        {
            if (entry.Value.Expiration is { } expiration && expiration <= now)
            {
                (expired ??= []).Add(entry);
            }
        }

        if (expired is not null)
        {
            // Oldest first, so watchers see expiries in a stable order.
            expired.Sort(static (a, b) => a.Value.Expiration!.Value.CompareTo(b.Value.Expiration!.Value));
            foreach (KeyValuePair<string, Lease> entry in expired)
            {
                RemoveLocked(entry.Key, entry.Value);
            }
        }

        ScheduleExpiryLocked();
    }

    private void ScheduleExpiryLocked()
    {
        if (_disposed)
        {
            return;
        }

        DateTimeOffset? next = null;
        foreach (Lease lease in _leases.Values)
        {
            if (lease.Expiration is { } expiration && (next is null || expiration < next))
            {
                next = expiration;
            }
        }

        TimeSpan due = next is { } n ? TimeSpan.FromTicks(Math.Max(0, (n - _timeProvider.GetUtcNow()).Ticks)) : Timeout.InfiniteTimeSpan;
        _expiryTimer.Change(due, Timeout.InfiniteTimeSpan);
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
