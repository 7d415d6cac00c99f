using System.Net;
using System.Runtime.CompilerServices;
using Etcdserverpb;
using Flannel.Configuration;
using Flannel.Subnets;
using Lease = Flannel.Subnets.Lease;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Flannel.Store.Etcd;

/// <summary>
/// flannel-compatible subnet store on etcd v3: the same keys (<c>&lt;prefix&gt;/subnets/10.244.1.0-24</c>) and
/// lease JSON as Go flanneld, so both can share one etcd.
/// </summary>
/// <remarks>
/// <para>Where it does better than flannel (see docs/etcd.md): creation and every rewrite are transactions
/// (create only while absent; rewrite only while the mod revision is the one we read), a lost race is
/// retried with fresh state instead of exiting, one etcd lease per node is kept alive with KeepAlive instead of
/// a new grant per renewal, keys without an etcd lease (reservations) are never given away nor get a TTL,
/// a deleted lease is re-acquired (keeping its subnet if free) instead of exiting, and remote leases are read
/// without one TimeToLive call per key.</para>
/// <para>One store instance serves one node.</para>
/// </remarks>
public sealed partial class EtcdSubnetStore : ISubnetStore, ISubnetStoreStatus, IDisposable
{
    private volatile string? _watchDownReason;

    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);
    private readonly IEtcdKeyValue _etcd;
    private readonly bool _ownsConnection;
    private readonly EtcdSubnetStoreOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly EtcdKeyLayout _keys;
    private readonly SemaphoreSlim _leaseGate = new(1, 1);
    private NetworkConfig? _config;

    // Start-up lists the leases once: the node hints' list is what the acquisition decides from, and the list the
    // acquisition succeeded with is the snapshot the lease watch starts from (watching from its revision + 1 replays
    // everything after it, our own lease included). Each is handed on once; a lost race or a later watch lists afresh.
    private LeaseList? _startupList;
    private bool _watchStarted;
    private long _etcdLeaseId;
    private DateTimeOffset _etcdLeaseExpiration;

    /// <summary>Creates the store from validated options (the DI path).</summary>
    public EtcdSubnetStore(IOptions<EtcdSubnetStoreOptions> options, ILogger<EtcdSubnetStore>? logger = null, TimeProvider? timeProvider = null)
        : this(new EtcdConnection((options ?? throw new ArgumentNullException(nameof(options))).Value, timeProvider, logger), ownsConnection: true, options.Value, logger, timeProvider)
    {
    }

    internal EtcdSubnetStore(IEtcdKeyValue connection, bool ownsConnection, EtcdSubnetStoreOptions options, ILogger? logger, TimeProvider? timeProvider)
    {
        _etcd = connection;
        _ownsConnection = ownsConnection;
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        _keys = new EtcdKeyLayout(options.Prefix);
        if (!connection.IsTls)
        {
            Log.InsecureConnection(_logger, EndpointsText);
        }
    }

    /// <summary>Counters for the acquisition benchmark and diagnostics.</summary>
    public EtcdSubnetStoreStatistics Statistics { get; } = new();

    private string EndpointsText => _etcd.EndpointsText;

    /// <summary>
    /// Reads <c>&lt;prefix&gt;/config</c>. While it is missing or etcd is unreachable, retries with backoff
    /// (1 s to 10 s) and logs the <c>etcdctl put</c> command that creates it.
    /// </summary>
    /// <exception cref="NetworkConfigException">The config exists but is not valid.</exception>
    /// <exception cref="EtcdConnectionException">TLS or authentication failed.</exception>
    public async ValueTask<NetworkConfig> GetNetworkConfigAsync(CancellationToken cancellationToken)
    {
        TimeSpan delay = TimeSpan.FromSeconds(1);
        while (true)
        {
            RangeResponse? response = null;
            try
            {
                response = await _etcd.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8(_keys.ConfigKey) }, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsRetryCandidate(ex, cancellationToken))
            {
                ThrowIfPermanent(ex);
                Log.EtcdUnreachable(_logger, "read the network config", EndpointsText, delay, ex.Message);
            }

            if (response is { Kvs.Count: > 0 })
            {
                string json = response.Kvs[0].Value.ToStringUtf8();
                NetworkConfig config = NetworkConfig.Parse(json).Validate();
                // IPv6-only (EnableIPv4 false) is stored in flannel's key form 0.0.0.0-0&fd00:10:244:1::-64 (SubnetKey).
                _config = config;
                return config;
            }

            if (response is not null)
            {
                Log.ConfigMissing(_logger, _keys.ConfigKey, EtcdctlPutCommand());
            }

            await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
        }
    }

    /// <summary>Returns the attributes of the lease whose PublicIP is <paramref name="publicIP"/>, so a VXLAN MAC survives restarts.</summary>
    public async ValueTask<NodeHints> GetNodeHintsAsync(IPAddress? publicIP, CancellationToken cancellationToken)
    {
        if (publicIP is null)
        {
            return NodeHints.None;
        }

        (List<EtcdLeaseRecord> records, long revision) = await ListWithRetryAsync(cancellationToken).ConfigureAwait(false);
        if (!Volatile.Read(ref _watchStarted))
        {
            Volatile.Write(ref _startupList, new LeaseList(records, revision));
        }

        EtcdLeaseRecord? mine = records.FirstOrDefault(r => r.ValueIsValid
            && (r.Lease.Attributes.PublicIP.Equals(publicIP) || publicIP.Equals(r.Lease.Attributes.PublicIPv6)));
        return mine is null ? NodeHints.None : new NodeHints { PreviousAttributes = mine.Lease.Attributes };
    }

    /// <summary>
    /// Acquires this node's lease in flannel's order (<see cref="SubnetAllocator"/>): reuse the lease whose
    /// PublicIP matches (a reservation stays without TTL), else the previous subnet, else a random free one.
    /// Creation is a transaction that succeeds only while the key is absent; a rewrite only while the key's mod
    /// revision is the one read. A lost race is retried with fresh state (quickly and jittered
    /// <see cref="EtcdSubnetStoreOptions.RaceRetries"/> times, then more slowly), and etcd outages are retried with
    /// backoff, until <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    /// <exception cref="OutOfSubnetsException">No free subnet is left.</exception>
    /// <exception cref="EtcdConnectionException">TLS or authentication failed.</exception>
    public async ValueTask<Lease> AcquireLeaseAsync(LeaseRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        NetworkConfig config = _config ?? await GetNetworkConfigAsync(cancellationToken).ConfigureAwait(false);
        byte[] value = LeaseJson.SerializeToUtf8Bytes(request.Attributes);
        int races = 0;
        TimeSpan transientDelay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            AcquireOutcome outcome;
            try
            {
                outcome = await TryAcquireOnceAsync(config, request, value, cancellationToken).ConfigureAwait(false);
                transientDelay = TimeSpan.FromMilliseconds(100);
            }
            catch (Exception ex) when (IsRetryCandidate(ex, cancellationToken))
            {
                ThrowIfPermanent(ex);
                Log.EtcdUnreachable(_logger, "acquire a subnet lease", EndpointsText, transientDelay, ex.Message);
                Statistics.AddTransientError();
                await Task.Delay(transientDelay, _time, cancellationToken).ConfigureAwait(false);
                transientDelay = Min(transientDelay * 2, MaxBackoff);
                continue;
            }

            if (outcome.Lease is { } lease)
            {
                Statistics.AddAcquisition(races);
                return lease;
            }

            // Lost a race (or our etcd lease vanished): the state we decided on is stale. Re-list and decide again.
            races++;
            Statistics.AddConflict();
            Log.RaceLost(_logger, outcome.ConflictKey ?? "?", races);
            await Task.Delay(RaceDelay(races), _time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Extends the lease: a KeepAlive on the node's etcd lease (nothing for a reservation). The key must still be
    /// ours; when it is gone it is created again for the same subnet if free.
    /// </summary>
    /// <exception cref="EtcdLeaseLostException">Another node owns the subnet now, or it could not be recreated.</exception>
    public async ValueTask<Lease> RenewLeaseAsync(Lease lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        string key = _keys.LeaseKey(lease.Subnet, lease.IPv6Subnet);
        RangeResponse current = await _etcd.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8(key) }, cancellationToken).ConfigureAwait(false);
        byte[] value = LeaseJson.SerializeToUtf8Bytes(lease.Attributes);
        if (current.Kvs.Count == 0)
        {
            Log.OwnLeaseGone(_logger, key, "it was deleted or expired; recreating it");
            long leaseId = await EnsureEtcdLeaseAsync(cancellationToken).ConfigureAwait(false);
            TxnResponse created = await CreateIfAbsentAsync(key, value, leaseId, createdNoLeaseSince: null, cancellationToken).ConfigureAwait(false);
            if (!created.Succeeded)
            {
                throw new EtcdLeaseLostException($"Lease {key} was deleted and another node took the subnet before it could be recreated.");
            }

            return lease with { Revision = created.Header.Revision, Expiration = _etcdLeaseExpiration };
        }

        Mvccpb.KeyValue kv = current.Kvs[0];
        if (!kv.Value.Span.SequenceEqual(value))
        {
            throw new EtcdLeaseLostException($"Lease {key} now holds another node's value ({kv.Value.ToStringUtf8()}); it is not ours to renew.");
        }

        if (kv.Lease == 0)
        {
            return lease with { Revision = kv.ModRevision, Expiration = null };
        }

        DateTimeOffset? expiration = await KeepAliveOnceAsync(kv.Lease, cancellationToken).ConfigureAwait(false);
        if (expiration is null)
        {
            throw new EtcdLeaseLostException($"The etcd lease {kv.Lease:x} of {key} has expired.");
        }

        return lease with { Revision = kv.ModRevision, Expiration = expiration };
    }

    /// <summary>Deletes the node's lease if it is still ours (compare-and-swap on its revision); reservations are left alone.</summary>
    public async ValueTask RevokeLeaseAsync(Lease lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        string key = _keys.LeaseKey(lease.Subnet, lease.IPv6Subnet);
        if (lease.IsReservation)
        {
            Log.ReservationKept(_logger, key);
            return;
        }

        var txn = new TxnRequest();
        txn.Compare.Add(new Compare
        {
            Key = ByteString.CopyFromUtf8(key),
            Target = Compare.Types.CompareTarget.Mod,
            Result = Compare.Types.CompareResult.Equal,
            ModRevision = lease.Revision,
        });
        txn.Success.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = ByteString.CopyFromUtf8(key) } });
        TxnResponse response = await _etcd.TxnAsync(txn, cancellationToken).ConfigureAwait(false);
        if (!response.Succeeded)
        {
            Log.RevokeSkipped(_logger, key);
        }

        long leaseId = Interlocked.Exchange(ref _etcdLeaseId, 0);
        if (leaseId != 0)
        {
            try
            {
                await _etcd.LeaseRevokeAsync(new LeaseRevokeRequest { ID = leaseId }, cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
            {
            }
        }
    }

    /// <summary>
    /// Why this store cannot serve the node right now — its lease watch is down and reconnecting — or null when it is
    /// healthy. The watch hides an etcd outage by retrying, so the agent reads this to let <c>/readyz</c> fall back.
    /// </summary>
    public string? NotReadyReason => _watchDownReason;

    /// <inheritdoc/>
    public async IAsyncEnumerable<LeaseWatchResult> WatchLeasesAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        Volatile.Write(ref _watchStarted, true);
        LeaseList? startFrom = Interlocked.Exchange(ref _startupList, null);
        await using var session = new EtcdLeaseWatchSession(
            _etcd, _keys, _options.LeaseTtl, _logger, _time, EndpointsText, reason => _watchDownReason = reason,
            startFrom is null ? null : (startFrom.Records, startFrom.Revision));
        while (true)
        {
            LeaseWatchResult result = await session.NextAsync(cancellationToken).ConfigureAwait(false);
            yield return result;
        }
    }

    /// <summary>Closes the connection to etcd (when the store created it). The node's lease is left in place.</summary>
    public void Dispose()
    {
        if (_ownsConnection)
        {
            _etcd.Dispose();
        }

        _leaseGate.Dispose();
    }

    internal string EtcdctlPutCommand() =>
        $"ETCDCTL_API=3 etcdctl --endpoints={EndpointsText} put {_keys.ConfigKey} '{{\"Network\": \"10.244.0.0/16\", \"Backend\": {{\"Type\": \"vxlan\"}}}}'";

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private TimeSpan RaceDelay(int races)
    {
        // Quick, jittered retries first (spreading racers apart), then a slower pace that never stops. Jitter needs no
        // secrecy: Random.Shared, not RandomNumberGenerator (which loads OpenSSL even when etcd is plain http).
        if (races <= _options.RaceRetries)
        {
            return TimeSpan.FromMilliseconds(Random.Shared.Next(1, 20 * races + 2));
        }

        if (races == _options.RaceRetries + 1)
        {
            Log.RaceRetriesExhausted(_logger, _options.RaceRetries);
        }

        double ms = Math.Min(MaxBackoff.TotalMilliseconds, 100 * Math.Pow(2, races - _options.RaceRetries));
        return TimeSpan.FromMilliseconds(ms / 2 + Random.Shared.Next(0, (int)(ms / 2) + 1));
    }

    /// <summary>
    /// Exception filter for the retry loops: true for failures worth retrying. A permanent failure (TLS, auth,
    /// permission) is rethrown as a clear <see cref="EtcdConnectionException"/> by <see cref="ThrowIfPermanent"/>
    /// inside the catch block (an exception thrown from a filter would be swallowed).
    /// </summary>
    private static bool IsRetryCandidate(Exception ex, CancellationToken cancellationToken) =>
        !cancellationToken.IsCancellationRequested
        && ex is RpcException or IOException or HttpRequestException or TimeoutException or OperationCanceledException;

    private void ThrowIfPermanent(Exception ex)
    {
        if (EtcdErrors.AsPermanent(ex, EndpointsText) is { } permanent)
        {
            throw permanent;
        }
    }

    private readonly record struct AcquireOutcome(Lease? Lease, string? ConflictKey);

    /// <summary>One list of <c>&lt;prefix&gt;/subnets/</c>: its well-formed records and the revision it was read at.</summary>
    private sealed record LeaseList(List<EtcdLeaseRecord> Records, long Revision);

    private async Task<AcquireOutcome> TryAcquireOnceAsync(NetworkConfig config, LeaseRequest request, byte[] value, CancellationToken cancellationToken)
    {
        // Deciding from the node hints' list is safe however old it is: creation and rewrites are transactions
        // guarded by what was read, so a stale decision loses its race and is made again from a fresh list.
        (List<EtcdLeaseRecord> records, long revision) = Interlocked.Exchange(ref _startupList, null) is { } listed
            ? (listed.Records, listed.Revision)
            : await ListAsync(cancellationToken).ConfigureAwait(false);
        AcquireOutcome outcome = await TryAcquireFromAsync(config, request, value, records, revision, cancellationToken).ConfigureAwait(false);
        if (outcome.Lease is not null && !Volatile.Read(ref _watchStarted))
        {
            Volatile.Write(ref _startupList, new LeaseList(records, revision));
        }

        return outcome;
    }

    private async Task<AcquireOutcome> TryAcquireFromAsync(NetworkConfig config, LeaseRequest request, byte[] value, List<EtcdLeaseRecord> records, long listRevision, CancellationToken cancellationToken)
    {

        // Only well-formed leases can be this node's; a subnet whose value is unreadable stays taken all the same
        // (as a reservation of nobody, so it is never handed out nor deleted).
        var leases = new Dictionary<Lease, EtcdLeaseRecord>(ReferenceEqualityComparer.Instance);
        foreach (EtcdLeaseRecord record in records)
        {
            leases.Add(record.ValueIsValid ? record.Lease : record.Lease with { Attributes = new LeaseAttributes(), Expiration = null }, record);
        }

        SubnetAllocation allocation = SubnetAllocator.Allocate(
            new SubnetAllocationRequest
            {
                Config = config,
                Leases = leases.Keys,
                PublicIP = request.Attributes.PublicIP,
                PublicIPv6 = request.Attributes.PublicIPv6,
                PreviousSubnet = request.PreviousSubnet,
                PreviousIPv6Subnet = request.PreviousIPv6Subnet,
            },
            Random.Shared);

        if (allocation.Kind == SubnetAllocationKind.ReusedExisting)
        {
            return await ReuseAsync(leases[allocation.ExistingLease!], request, value, cancellationToken).ConfigureAwait(false);
        }

        if (allocation.IncompatibleLease is { } incompatible)
        {
            // flannel deletes this node's old lease when the config no longer fits it; only while it is unchanged.
            EtcdLeaseRecord old = leases[incompatible];
            Log.DeletingIncompatibleLease(_logger, old.Key);
            if (!await CompareAndDeleteAsync(old, cancellationToken).ConfigureAwait(false))
            {
                return new AcquireOutcome(null, old.Key);
            }
        }

        if (records.FirstOrDefault(r => r.IsReservation && r.ValueIsValid && r.Lease.Attributes.PublicIP.Equals(request.Attributes.PublicIP)) is { } unusable)
        {
            Log.ReservationIncompatible(_logger, unusable.Key);
        }

        return await CreateAsync(allocation, request, value, listRevision, cancellationToken).ConfigureAwait(false);
    }

    private async Task<AcquireOutcome> CreateAsync(SubnetAllocation create, LeaseRequest request, byte[] value, long listRevision, CancellationToken cancellationToken)
    {
        string key = _keys.LeaseKey(create.Subnet, create.IPv6Subnet);
        long leaseId = await EnsureEtcdLeaseAsync(cancellationToken).ConfigureAwait(false);
        TxnResponse response;
        try
        {
            // A dual-stack key names both subnets, so the key's absence does not say that either subnet is free:
            // two nodes choosing the same IPv4 subnet with different IPv6 subnets (or the reverse) would both win.
            // Such a creation also requires that no lease was created since the list it was decided from; if one
            // was, the decision is stale, the race is lost and the next attempt decides from a fresh list.
            long? createdNoLeaseSince = create.Subnet is not null && create.IPv6Subnet is not null ? listRevision + 1 : null;
            response = await CreateIfAbsentAsync(key, value, leaseId, createdNoLeaseSince, cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException ex) when (EtcdErrors.IsLeaseNotFound(ex))
        {
            ForgetEtcdLease(leaseId);
            return new AcquireOutcome(null, key);
        }

        if (!response.Succeeded)
        {
            return new AcquireOutcome(null, key);
        }

        if (create.Kind == SubnetAllocationKind.ReusedPrevious)
        {
            Log.PreviousSubnetReused(_logger, key);
        }
        else
        {
            Log.LeaseCreated(_logger, key);
        }

        return new AcquireOutcome(
            new Lease
            {
                Subnet = create.Subnet,
                IPv6Subnet = create.IPv6Subnet,
                Attributes = request.Attributes,
                Expiration = _etcdLeaseExpiration,
                Revision = response.Header.Revision,
            },
            null);
    }

    private async Task<AcquireOutcome> ReuseAsync(EtcdLeaseRecord record, LeaseRequest request, byte[] value, CancellationToken cancellationToken)
    {
        // A reservation keeps having no etcd lease: attaching one would turn it into an ordinary, expiring lease.
        long leaseId = record.IsReservation ? 0 : await EnsureEtcdLeaseAsync(cancellationToken).ConfigureAwait(false);
        long revision = record.ModRevision;
        if (!record.Value.Span.SequenceEqual(value) || record.EtcdLeaseId != leaseId)
        {
            var txn = new TxnRequest();
            txn.Compare.Add(new Compare
            {
                Key = ByteString.CopyFromUtf8(record.Key),
                Target = Compare.Types.CompareTarget.Mod,
                Result = Compare.Types.CompareResult.Equal,
                ModRevision = record.ModRevision,
            });
            txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = ByteString.CopyFromUtf8(record.Key), Value = ByteString.CopyFrom(value), Lease = leaseId } });
            TxnResponse response;
            try
            {
                response = await _etcd.TxnAsync(txn, cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException ex) when (EtcdErrors.IsLeaseNotFound(ex))
            {
                ForgetEtcdLease(leaseId);
                return new AcquireOutcome(null, record.Key);
            }

            if (!response.Succeeded)
            {
                return new AcquireOutcome(null, record.Key);
            }

            revision = response.Header.Revision;
            if (record.EtcdLeaseId != 0 && record.EtcdLeaseId != leaseId)
            {
                await RevokeIfEmptyAsync(record.EtcdLeaseId, cancellationToken).ConfigureAwait(false);
            }
        }

        if (record.IsReservation)
        {
            Log.ReservationReused(_logger, record.Key, request.Attributes.PublicIP);
        }
        else
        {
            Log.LeaseReused(_logger, record.Key, request.Attributes.PublicIP);
        }

        return new AcquireOutcome(
            new Lease
            {
                Subnet = record.Lease.Subnet,
                IPv6Subnet = record.Lease.IPv6Subnet,
                Attributes = request.Attributes,
                Expiration = record.IsReservation ? null : _etcdLeaseExpiration,
                Revision = revision,
            },
            null);
    }

    private async Task RevokeIfEmptyAsync(long leaseId, CancellationToken cancellationToken)
    {
        // The previous run's etcd lease now holds nothing of ours; revoke it rather than leak it for 24 h,
        // but only if no other key uses it (revoking deletes every attached key).
        try
        {
            LeaseTimeToLiveResponse ttl = await _etcd.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = leaseId, Keys = true }, cancellationToken).ConfigureAwait(false);
            if (ttl.TTL > 0 && ttl.Keys.Count == 0)
            {
                await _etcd.LeaseRevokeAsync(new LeaseRevokeRequest { ID = leaseId }, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (RpcException)
        {
            // Best effort: the lease expires by itself.
        }
    }

    private Task<TxnResponse> CreateIfAbsentAsync(string key, byte[] value, long leaseId, long? createdNoLeaseSince, CancellationToken cancellationToken)
    {
        // flannel's create: Txn(If(Version(key) == 0), Then(Put(key, value, WithLease))). With
        // createdNoLeaseSince, also If(CreateRevision(every key under the subnets prefix) < it).
        var txn = new TxnRequest();
        ByteString keyBytes = ByteString.CopyFromUtf8(key);
        txn.Compare.Add(new Compare
        {
            Key = keyBytes,
            Target = Compare.Types.CompareTarget.Version,
            Result = Compare.Types.CompareResult.Equal,
            Version = 0,
        });
        if (createdNoLeaseSince is { } revision)
        {
            RangeRequest subnets = EtcdKeyLayout.PrefixRange(_keys.SubnetsPrefix);
            txn.Compare.Add(new Compare
            {
                Key = subnets.Key,
                RangeEnd = subnets.RangeEnd,
                Target = Compare.Types.CompareTarget.Create,
                Result = Compare.Types.CompareResult.Less,
                CreateRevision = revision,
            });
        }

        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = keyBytes, Value = ByteString.CopyFrom(value), Lease = leaseId } });
        return _etcd.TxnAsync(txn, cancellationToken);
    }

    private async Task<bool> CompareAndDeleteAsync(EtcdLeaseRecord record, CancellationToken cancellationToken)
    {
        var txn = new TxnRequest();
        txn.Compare.Add(new Compare
        {
            Key = ByteString.CopyFromUtf8(record.Key),
            Target = Compare.Types.CompareTarget.Mod,
            Result = Compare.Types.CompareResult.Equal,
            ModRevision = record.ModRevision,
        });
        txn.Success.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = ByteString.CopyFromUtf8(record.Key) } });
        TxnResponse response = await _etcd.TxnAsync(txn, cancellationToken).ConfigureAwait(false);
        return response.Succeeded;
    }

    /// <summary>Grants this node's one etcd lease (TTL <see cref="EtcdSubnetStoreOptions.LeaseTtl"/>) the first time it is needed.</summary>
    private async Task<long> EnsureEtcdLeaseAsync(CancellationToken cancellationToken)
    {
        long id = Volatile.Read(ref _etcdLeaseId);
        if (id != 0)
        {
            return id;
        }

        await _leaseGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_etcdLeaseId != 0)
            {
                return _etcdLeaseId;
            }

            long ttlSeconds = (long)Math.Ceiling(_options.LeaseTtl.TotalSeconds);
            LeaseGrantResponse grant = await _etcd.LeaseGrantAsync(new LeaseGrantRequest { TTL = ttlSeconds }, cancellationToken).ConfigureAwait(false);
            _etcdLeaseExpiration = _time.GetUtcNow() + TimeSpan.FromSeconds(grant.TTL);
            Volatile.Write(ref _etcdLeaseId, grant.ID);
            Log.EtcdLeaseGranted(_logger, grant.ID, grant.TTL);
            return grant.ID;
        }
        finally
        {
            _leaseGate.Release();
        }
    }

    private void ForgetEtcdLease(long leaseId)
    {
        if (Interlocked.CompareExchange(ref _etcdLeaseId, 0, leaseId) == leaseId)
        {
            Log.EtcdLeaseLost(_logger, leaseId);
        }
    }

    /// <summary>Sends one KeepAlive for <paramref name="leaseId"/>; returns the new expiration, or null when the etcd lease is gone.</summary>
    private async Task<DateTimeOffset?> KeepAliveOnceAsync(long leaseId, CancellationToken cancellationToken)
    {
        LeaseKeepAliveResponse response = await _etcd.LeaseKeepAliveOnceAsync(leaseId, cancellationToken).ConfigureAwait(false);
        if (response.TTL <= 0)
        {
            ForgetEtcdLease(leaseId);
            return null;
        }

        DateTimeOffset expiration = _time.GetUtcNow() + TimeSpan.FromSeconds(response.TTL);
        if (leaseId == Volatile.Read(ref _etcdLeaseId))
        {
            _etcdLeaseExpiration = expiration;
        }

        Statistics.AddRenewal();
        return expiration;
    }

    internal async Task<(List<EtcdLeaseRecord> Records, long Revision)> ListAsync(CancellationToken cancellationToken)
    {
        string prefix = _keys.SubnetsPrefix;
        RangeResponse response = await _etcd.RangeAsync(EtcdKeyLayout.PrefixRange(prefix), cancellationToken).ConfigureAwait(false);
        var records = new List<EtcdLeaseRecord>(response.Kvs.Count);
        DateTimeOffset now = _time.GetUtcNow();
        foreach (Mvccpb.KeyValue kv in response.Kvs)
        {
            EtcdLeaseRecord? record = EtcdLeaseRecord.TryParse(kv, _keys, now, _options.LeaseTtl, out string? problem);
            if (problem is not null)
            {
                Log.BadLease(_logger, kv.Key.ToStringUtf8(), problem);
            }

            if (record is not null)
            {
                records.Add(record);
            }
        }

        return (records, response.Header.Revision);
    }

    private async Task<(List<EtcdLeaseRecord> Records, long Revision)> ListWithRetryAsync(CancellationToken cancellationToken)
    {
        TimeSpan delay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            try
            {
                return await ListAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsRetryCandidate(ex, cancellationToken))
            {
                ThrowIfPermanent(ex);
                Log.EtcdUnreachable(_logger, "list the leases", EndpointsText, delay, ex.Message);
            }

            await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
            delay = Min(delay * 2, MaxBackoff);
        }
    }
}
