using System.Net;
using System.Runtime.CompilerServices;
using Flannel.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Flannel.Subnets.InMemory;

/// <summary>Options of <see cref="InMemorySubnetStore"/>.</summary>
public sealed class InMemorySubnetStoreOptions
{
    /// <summary>
    /// The network config (net-conf.json text) of the registry that dependency injection creates when none is
    /// registered. Ignored when a registry is given.
    /// </summary>
    public string? NetworkConfig { get; set; }

    /// <summary>How long a lease lives without renewal (flannel's <c>subnetTTL</c>, 24 h).</summary>
    public TimeSpan LeaseTtl { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How long before expiry a lease is renewed (<c>--subnet-lease-renew-margin</c>, 60 min).</summary>
    public TimeSpan RenewMargin { get; set; } = TimeSpan.FromMinutes(60);

    /// <summary>How long to wait before retrying after a failed renewal (flannel: 1 min).</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How many times a lost creation race is retried (flannel's <c>raceRetries</c>, 10).</summary>
    public int RaceRetries { get; set; } = 10;

    /// <summary>Seed for the random subnet pick; null for an unpredictable seed. Set it in tests.</summary>
    public int? RandomSeed { get; set; }
}

/// <summary>
/// The embedded subnet store: one node's view of a shared <see cref="InMemorySubnetRegistry"/>. It behaves as
/// the etcd store does (create-if-absent, compare-and-swap renewals, TTL expiry, snapshot-then-events
/// watches), so several agents in one process can form a cluster without etcd: the demo and the tests run on it.
/// </summary>
public sealed partial class InMemorySubnetStore : ISubnetStore
{
    private readonly InMemorySubnetRegistry _registry;
    private readonly InMemorySubnetStoreOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly Random _random;
    private readonly Lock _randomLock = new();

    /// <summary>Creates a store for one node.</summary>
    /// <param name="registry">The shared registry (the "cluster").</param>
    /// <param name="options">Options; defaults when null.</param>
    /// <param name="logger">Logger; none when null.</param>
    public InMemorySubnetStore(InMemorySubnetRegistry registry, InMemorySubnetStoreOptions? options = null, ILogger<InMemorySubnetStore>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        _registry = registry;
        _options = options ?? new InMemorySubnetStoreOptions();
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(_options.LeaseTtl, TimeSpan.Zero, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.RaceRetries, 1, nameof(options));
        _timeProvider = registry.TimeProvider;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _random = _options.RandomSeed is { } seed ? new Random(seed) : new Random();
    }

    /// <summary>The registry this store is bound to.</summary>
    public InMemorySubnetRegistry Registry => _registry;

    /// <inheritdoc />
    public ValueTask<NetworkConfig> GetNetworkConfigAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(_registry.GetNetworkConfig());
    }

    /// <inheritdoc />
    public ValueTask<NodeHints> GetNodeHintsAsync(IPAddress? publicIP, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (publicIP is null || publicIP.Equals(IPAddress.Any))
        {
            return ValueTask.FromResult(NodeHints.None);
        }

        Lease? lease = _registry.ListLeases().FirstOrDefault(l => l.Attributes.PublicIP.Equals(publicIP));
        return ValueTask.FromResult(lease is null ? NodeHints.None : new NodeHints { PreviousAttributes = lease.Attributes });
    }

    /// <inheritdoc />
    /// <exception cref="OutOfSubnetsException">No free subnet is left.</exception>
    /// <exception cref="NetworkConfigException">The registry's config is invalid.</exception>
    public ValueTask<Lease> AcquireLeaseAsync(LeaseRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        cancellationToken.ThrowIfCancellationRequested();
        NetworkConfig config = _registry.GetNetworkConfig();
        for (int attempt = 1; attempt <= _options.RaceRetries; attempt++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (TryAcquire(config, request) is { } lease)
            {
                return ValueTask.FromResult(lease);
            }

            Log.AcquireRaceLost(_logger, attempt, _options.RaceRetries);
        }

        throw new InvalidOperationException(
            $"max retries reached trying to acquire a subnet: {_options.RaceRetries} attempts lost a race with other nodes");
    }

    /// <inheritdoc />
    /// <exception cref="LeaseLostException">The lease was deleted, expired, or now belongs to another node.</exception>
    public ValueTask<Lease> RenewLeaseAsync(Lease lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        cancellationToken.ThrowIfCancellationRequested();
        string key = lease.Key;

        // Compare-and-swap on the revision we hold; if it moved but the lease is still ours (we updated it through
        // another path), swap against the current revision. Never overwrite another node's lease.
        Lease? current = _registry.GetLease(key)
            ?? throw new LeaseLostException($"lease {key} no longer exists (deleted or expired)");
        if (current.Revision != lease.Revision && !IsSameOwner(current.Attributes, lease.Attributes))
        {
            throw new LeaseLostException($"lease {key} now belongs to {current.Attributes.PublicIP}");
        }

        TimeSpan? ttl = current.IsReservation ? null : _options.LeaseTtl;
        Lease renewed = _registry.TryUpdate(key, current.Revision, lease.Attributes, ttl)
            ?? throw new LeaseLostException($"lease {key} changed while being renewed");
        return ValueTask.FromResult(renewed);
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<Lease> KeepLeaseAsync(Lease lease, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        Lease current = lease;

        // Watch our own key to notice deletion, expiry, or a takeover, without polling. The watch has its own
        // cancellation so that a pending read can be stopped before the enumerator is disposed.
        using var watchCancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        IAsyncEnumerator<LeaseWatchResult> watch = _registry.WatchAsync(watchCancellation.Token).GetAsyncEnumerator(watchCancellation.Token);
        Task<bool> nextChange = watch.MoveNextAsync().AsTask();
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                // Reservations never expire, so they are never renewed; only a change of the key wakes us up.
                TimeSpan due = current.Expiration is { } expiration
                    ? Max(TimeSpan.Zero, expiration - RenewMargin - _timeProvider.GetUtcNow())
                    : Timeout.InfiniteTimeSpan;
                bool renewalDue;
                using (var delayCancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                {
                    Task delay = Task.Delay(due, _timeProvider, delayCancellation.Token);
                    renewalDue = await Task.WhenAny(nextChange, delay).ConfigureAwait(false) == delay;
                    await delayCancellation.CancelAsync().ConfigureAwait(false); // release the timer
                }

                cancellationToken.ThrowIfCancellationRequested();
                Lease? changed;
                if (renewalDue)
                {
                    changed = await RenewOrReacquireAsync(current, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    if (!await nextChange.ConfigureAwait(false))
                    {
                        yield break; // the registry was disposed
                    }

                    LeaseWatchResult item = watch.Current;
                    nextChange = watch.MoveNextAsync().AsTask();
                    changed = await OnOwnKeyChangedAsync(current, item, cancellationToken).ConfigureAwait(false);
                }

                if (changed is not null)
                {
                    current = changed;
                    yield return current;
                }
            }
        }
        finally
        {
            await watchCancellation.CancelAsync().ConfigureAwait(false);
            try
            {
                await nextChange.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // expected: we just cancelled it
            }

            await watch.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public ValueTask RevokeLeaseAsync(Lease lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        cancellationToken.ThrowIfCancellationRequested();
        Lease? current = _registry.GetLease(lease.Key);
        if (current is not null && IsSameOwner(current.Attributes, lease.Attributes))
        {
            _registry.TryDelete(lease.Key, current.Revision);
            Log.LeaseRevoked(_logger, lease.Key);
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public IAsyncEnumerable<LeaseWatchResult> WatchLeasesAsync(CancellationToken cancellationToken) =>
        _registry.WatchAsync(cancellationToken);

    private Lease? TryAcquire(NetworkConfig config, LeaseRequest request)
    {
        IReadOnlyList<Lease> leases = _registry.ListLeases();
        SubnetAllocation allocation;
        lock (_randomLock)
        {
            allocation = SubnetAllocator.Allocate(
                new SubnetAllocationRequest
                {
                    Config = config,
                    Leases = leases,
                    PublicIP = request.Attributes.PublicIP,
                    PublicIPv6 = request.Attributes.PublicIPv6,
                    PreviousSubnet = request.PreviousSubnet,
                    PreviousIPv6Subnet = request.PreviousIPv6Subnet,
                },
                _random);
        }

        if (allocation.ExistingLease is { } existing)
        {
            TimeSpan? ttl = existing.IsReservation ? null : _options.LeaseTtl;
            Lease? reused = _registry.TryUpdate(existing.Key, existing.Revision, request.Attributes, ttl);
            if (reused is not null)
            {
                Log.LeaseReused(_logger, reused.Key, request.Attributes.PublicIP);
            }

            return reused;
        }

        if (allocation.IncompatibleLease is { } incompatible)
        {
            Log.IncompatibleLeaseDeleted(_logger, incompatible.Key, request.Attributes.PublicIP);
            _registry.TryDelete(incompatible.Key, incompatible.Revision);
        }

        Lease? created = _registry.TryCreate(allocation.Subnet, allocation.IPv6Subnet, request.Attributes, _options.LeaseTtl);
        if (created is not null)
        {
            if (allocation.Kind == SubnetAllocationKind.ReusedPrevious)
            {
                Log.PreviousSubnetReused(_logger, created.Key);
            }
            else
            {
                Log.LeaseAllocated(_logger, created.Key, request.Attributes.PublicIP);
            }
        }

        return created;
    }

    private async ValueTask<Lease?> OnOwnKeyChangedAsync(Lease current, LeaseWatchResult item, CancellationToken cancellationToken)
    {
        string key = current.Key;
        IEnumerable<Lease> ownStates = item.Snapshot is { } snapshot
            ? [snapshot.FirstOrDefault(l => l.Key == key) ?? AsRemoved(current, long.MaxValue)]
            : item.Events.Where(e => e.Lease.Key == key)
                .Select(e => e.Type == LeaseEventType.Removed ? AsRemoved(e.Lease, e.Lease.Revision) : e.Lease);

        Lease? result = null;
        foreach (Lease state in ownStates)
        {
            Lease latest = result ?? current;
            if (state.Revision <= latest.Revision || latest.Key != key)
            {
                continue; // older than what we hold (e.g. our own renewal), or we moved to another subnet already
            }

            if (ReferenceEquals(state.Attributes, s_removedMarker))
            {
                Log.OwnLeaseLost(_logger, key, "it was deleted or expired");
                result = await ReacquireAsync(latest, cancellationToken).ConfigureAwait(false);
            }
            else if (!IsSameOwner(state.Attributes, latest.Attributes))
            {
                Log.OwnLeaseLost(_logger, key, $"it now belongs to {state.Attributes.PublicIP}");
                result = await ReacquireAsync(latest, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                result = state; // updated through another path; adopt its revision and expiration
            }
        }

        return result;
    }

    private async ValueTask<Lease> RenewOrReacquireAsync(Lease current, CancellationToken cancellationToken)
    {
        try
        {
            Lease renewed = await RenewLeaseAsync(current, cancellationToken).ConfigureAwait(false);
            Log.LeaseRenewed(_logger, renewed.Key, renewed.Expiration);
            return renewed;
        }
        catch (LeaseLostException ex)
        {
            Log.OwnLeaseLost(_logger, current.Key, ex.Message);
            return await ReacquireAsync(current, cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask<Lease> ReacquireAsync(Lease lost, CancellationToken cancellationToken)
    {
        // Ask for the same subnets again: they are kept if still free (flannel exits instead).
        while (true)
        {
            try
            {
                Lease lease = await AcquireLeaseAsync(
                    new LeaseRequest { Attributes = lost.Attributes, PreviousSubnet = lost.Subnet, PreviousIPv6Subnet = lost.IPv6Subnet },
                    cancellationToken).ConfigureAwait(false);
                Log.LeaseReacquired(_logger, lost.Key, lease.Key);
                return lease;
            }
            catch (Exception ex) when (ex is OutOfSubnetsException or InvalidOperationException or NetworkConfigException)
            {
                Log.ReacquireFailed(_logger, ex, lost.Key, _options.RetryDelay);
                await Task.Delay(_options.RetryDelay, _timeProvider, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    // Marks "the key is gone" in OnOwnKeyChangedAsync without inventing a nullable lease type.
    private static readonly LeaseAttributes s_removedMarker = new();

    private static Lease AsRemoved(Lease lease, long revision) => lease with { Attributes = s_removedMarker, Revision = revision };

    // A lease belongs to the node that published its public IP (IPv6 for IPv6-only nodes).
    private static bool IsSameOwner(LeaseAttributes a, LeaseAttributes b) =>
        a.PublicIP.Equals(b.PublicIP) && Equals(a.PublicIPv6, b.PublicIPv6);

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    // A margin as long as the TTL would renew in a tight loop; renew at half-life at the latest.
    private TimeSpan RenewMargin => _options.RenewMargin < _options.LeaseTtl / 2 ? _options.RenewMargin : _options.LeaseTtl / 2;

    /// <summary>Log messages of the in-memory store (event ids 1100–1119).</summary>
    private static partial class Log
    {
        [LoggerMessage(EventId = 1100, Level = LogLevel.Information, Message = "Allocated lease {Key} to node {PublicIP}")]
        public static partial void LeaseAllocated(ILogger logger, string key, IPAddress publicIP);

        [LoggerMessage(EventId = 1101, Level = LogLevel.Information, Message = "Found lease {Key} for current IP {PublicIP}, reusing")]
        public static partial void LeaseReused(ILogger logger, string key, IPAddress publicIP);

        [LoggerMessage(EventId = 1102, Level = LogLevel.Information, Message = "Found previously leased subnet {Key}, reusing")]
        public static partial void PreviousSubnetReused(ILogger logger, string key);

        [LoggerMessage(EventId = 1103, Level = LogLevel.Information, Message = "Lease {Key} for current IP {PublicIP} is not compatible with the network config, deleting it")]
        public static partial void IncompatibleLeaseDeleted(ILogger logger, string key, IPAddress publicIP);

        [LoggerMessage(EventId = 1104, Level = LogLevel.Warning, Message = "Lost the race to create a lease (attempt {Attempt} of {Attempts}), retrying")]
        public static partial void AcquireRaceLost(ILogger logger, int attempt, int attempts);

        [LoggerMessage(EventId = 1105, Level = LogLevel.Information, Message = "Lease {Key} renewed, new expiration {Expiration}")]
        public static partial void LeaseRenewed(ILogger logger, string key, DateTimeOffset? expiration);

        [LoggerMessage(EventId = 1106, Level = LogLevel.Error, Message = "This node's lease {Key} was lost: {Reason}. Acquiring a lease again")]
        public static partial void OwnLeaseLost(ILogger logger, string key, string reason);

        [LoggerMessage(EventId = 1107, Level = LogLevel.Warning, Message = "Re-acquired lease {NewKey} after losing {OldKey}")]
        public static partial void LeaseReacquired(ILogger logger, string oldKey, string newKey);

        [LoggerMessage(EventId = 1108, Level = LogLevel.Error, Message = "Could not re-acquire a lease after losing {Key}; retrying in {Delay}")]
        public static partial void ReacquireFailed(ILogger logger, Exception exception, string key, TimeSpan delay);

        [LoggerMessage(EventId = 1109, Level = LogLevel.Information, Message = "Lease {Key} revoked")]
        public static partial void LeaseRevoked(ILogger logger, string key);
    }
}
