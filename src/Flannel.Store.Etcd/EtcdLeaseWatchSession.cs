using Etcdserverpb;
using Flannel.Subnets;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Mvccpb;

namespace Flannel.Store.Etcd;

/// <summary>
/// The lease watch, pulled one result at a time by <see cref="EtcdSubnetStore.WatchLeasesAsync"/>:
/// <list type="number">
/// <item>list <c>&lt;prefix&gt;/subnets/</c> (or take the list the store made at start-up) and emit the snapshot;</item>
/// <item>watch the prefix from the list's revision + 1 (so nothing between list and watch is lost);</item>
/// <item>turn PUTs into Added (skipping a re-delivery whose value is unchanged) and DELETEs (including TTL
/// expiry) into Removed carrying the cached attributes;</item>
/// <item>when etcd cancels the watch (compaction: the revision we resume from is gone), list again and emit
/// a new snapshot for the consumer to diff;</item>
/// <item>when the stream breaks or goes silent (member down, connection lost, a member partitioned away: see
/// <see cref="EtcdConnection"/>), reconnect with backoff from 100 ms to 5 s, on the next member, and resume after the
/// last revision seen.</item>
/// </list>
/// Keys that do not name a subnet and values that are not lease JSON are skipped with a warning naming the
/// key; the watch goes on.
/// </summary>
internal sealed class EtcdLeaseWatchSession : IAsyncDisposable
{
    private static readonly TimeSpan InitialBackoff = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);
    private readonly IEtcdKeyValue _etcd;
    private readonly EtcdKeyLayout _keys;
    private readonly TimeSpan _ttl;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly string _endpoints;
    private readonly Action<string?> _reportHealth;
    // Only the parsed lease per etcd key (its Revision is the key's ModRevision): not the record with its raw value
    // bytes, which only the own-lease comparison needs, and which would otherwise be kept for every peer. Keyed by
    // the part after the subnets prefix, which for a key in flannel's own form is the lease's key itself, so the map
    // holds no string of its own per peer (a full key is about 100 bytes; 0.5 MB at 5,000 peers).
    private readonly Dictionary<string, Flannel.Subnets.Lease> _cache = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Flannel.Subnets.Lease>.AlternateLookup<ReadOnlySpan<char>> _cacheBySpan;
    private readonly HashSet<(string Key, long Revision)> _reported = [];
    private const int MaxReported = 10_000;
    private IAsyncEnumerator<WatchResponse>? _stream;
    private CancellationTokenSource? _streamCancellation;
    private long _nextRevision;
    private bool _needsSnapshot = true;
    private (IReadOnlyList<EtcdLeaseRecord> Records, long Revision)? _startFrom;
    private TimeSpan _backoff = InitialBackoff;

    /// <summary>
    /// Creates the session. <c>reportHealth</c> is told why the watch is down while it reconnects, and null once etcd
    /// answers again, so the agent's readiness can fall back during an outage that this session otherwise hides by
    /// retrying. <c>startFrom</c>, when given, is a list the store already made (at start-up): the first snapshot is
    /// that list and the watch resumes after its revision, instead of listing again.
    /// </summary>
    public EtcdLeaseWatchSession(
        IEtcdKeyValue etcd, EtcdKeyLayout keys, TimeSpan ttl, ILogger logger, TimeProvider time, string endpoints, Action<string?> reportHealth,
        (IReadOnlyList<EtcdLeaseRecord> Records, long Revision)? startFrom = null)
    {
        _startFrom = startFrom;
        _reportHealth = reportHealth;
        _cacheBySpan = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
        _etcd = etcd;
        _keys = keys;
        _ttl = ttl;
        _logger = logger;
        _time = time;
        _endpoints = endpoints;
    }

    /// <summary>The revision the watch resumes from.</summary>
    public long NextRevision => _nextRevision;

    public async ValueTask<LeaseWatchResult> NextAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                if (_needsSnapshot)
                {
                    LeaseWatchResult snapshot = await SnapshotAsync(cancellationToken).ConfigureAwait(false);
                    _reportHealth(null);
                    return snapshot;
                }

                _stream ??= Open(cancellationToken);
                if (!await _stream.MoveNextAsync().ConfigureAwait(false))
                {
                    throw new IOException("etcd closed the watch stream.");
                }

                WatchResponse response = _stream.Current;
                _reportHealth(null);
                if (response.Canceled || response.CompactRevision != 0)
                {
                    Log.WatchCanceled(_logger, _keys.SubnetsPrefix, _nextRevision, response.CompactRevision, response.CancelReason);
                    await CloseAsync().ConfigureAwait(false);
                    _needsSnapshot = true;
                    if (response.CompactRevision == 0)
                    {
                        // Canceled for another reason (e.g. a lost leader): pace the re-lists instead of spinning.
                        await Task.Delay(_backoff, _time, cancellationToken).ConfigureAwait(false);
                        _backoff = TimeSpan.FromTicks(Math.Min(_backoff.Ticks * 2, MaxBackoff.Ticks));
                    }

                    continue;
                }

                if (response.Events.Count == 0)
                {
                    // Created, or a progress notification. The resume revision does not move: the answer to a
                    // progress request can run ahead of events not yet sent to a lagging watcher (etcd before 3.5.8),
                    // and resuming from the last event is always right (a compacted one means listing again).
                    _backoff = InitialBackoff;
                    continue;
                }

                _backoff = InitialBackoff;
                List<LeaseEvent> events = Apply(response);
                if (events.Count > 0)
                {
                    return LeaseWatchResult.FromEvents(events);
                }
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is RpcException or IOException or HttpRequestException or TimeoutException or OperationCanceledException)
            {
                if (EtcdErrors.AsPermanent(ex, _endpoints) is { } permanent)
                {
                    await CloseAsync().ConfigureAwait(false);
                    throw permanent;
                }

                await CloseAsync().ConfigureAwait(false);
                _reportHealth($"the etcd lease watch on {_endpoints} is down ({ex.Message}); reconnecting");
                Log.WatchInterrupted(_logger, _keys.SubnetsPrefix, _endpoints, _backoff, _nextRevision, ex.Message);
                await Task.Delay(_backoff, _time, cancellationToken).ConfigureAwait(false);
                _backoff = TimeSpan.FromTicks(Math.Min(_backoff.Ticks * 2, MaxBackoff.Ticks));
            }
        }
    }

    public async ValueTask DisposeAsync() => await CloseAsync().ConfigureAwait(false);

    private async Task<LeaseWatchResult> SnapshotAsync(CancellationToken cancellationToken)
    {
        _cache.Clear();
        if (_startFrom is { } listed)
        {
            _startFrom = null;
            foreach (EtcdLeaseRecord record in listed.Records)
            {
                if (record.ValueIsValid)
                {
                    Cache(record);
                }
            }

            _nextRevision = listed.Revision + 1;
        }
        else
        {
            RangeResponse response = await _etcd.RangeAsync(EtcdKeyLayout.PrefixRange(_keys.SubnetsPrefix), cancellationToken).ConfigureAwait(false);
            DateTimeOffset now = _time.GetUtcNow();
            foreach (KeyValue kv in response.Kvs)
            {
                if (Parse(kv, now) is { ValueIsValid: true } record)
                {
                    Cache(record);
                }
            }

            _nextRevision = response.Header.Revision + 1;
        }

        _needsSnapshot = false;
        return LeaseWatchResult.FromSnapshot([.. _cache.OrderBy(r => r.Key, StringComparer.Ordinal).Select(r => r.Value)]);
    }

    /// <summary>The cache's key for an etcd key: the part after the subnets prefix.</summary>
    private ReadOnlySpan<char> CacheKey(string etcdKey) => etcdKey.AsSpan(_keys.SubnetsPrefix.Length);

    private void Cache(EtcdLeaseRecord record)
    {
        ReadOnlySpan<char> key = CacheKey(record.Key);
        _cache[key.SequenceEqual(record.Lease.Key) ? record.Lease.Key : key.ToString()] = record.Lease;
    }

    private IAsyncEnumerator<WatchResponse> Open(CancellationToken cancellationToken)
    {
        _streamCancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        string prefix = _keys.SubnetsPrefix;
        return _etcd.WatchAsync(
            new WatchCreateRequest
            {
                Key = ByteString.CopyFromUtf8(prefix),
                RangeEnd = EtcdKeyLayout.PrefixEnd(prefix),
                StartRevision = _nextRevision,
                ProgressNotify = true,
            },
            _streamCancellation.Token).GetAsyncEnumerator(_streamCancellation.Token);
    }

    private async Task CloseAsync()
    {
        IAsyncEnumerator<WatchResponse>? stream = _stream;
        CancellationTokenSource? cts = _streamCancellation;
        _stream = null;
        _streamCancellation = null;
        if (cts is not null)
        {
            await cts.CancelAsync().ConfigureAwait(false);
        }

        if (stream is not null)
        {
            try
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or RpcException or IOException)
            {
                // The stream is being abandoned; how it ended no longer matters.
            }
        }

        cts?.Dispose();
    }

    private List<LeaseEvent> Apply(WatchResponse response)
    {
        var events = new List<LeaseEvent>(response.Events.Count);
        DateTimeOffset now = _time.GetUtcNow();
        foreach (Event ev in response.Events)
        {
            KeyValue kv = ev.Kv;
            _nextRevision = Math.Max(_nextRevision, kv.ModRevision + 1);
            string key = kv.Key.ToStringUtf8();
            _cacheBySpan.TryGetValue(CacheKey(key), out Flannel.Subnets.Lease? cached);
            if (ev.Type == Event.Types.EventType.Delete)
            {
                if (cached is not null)
                {
                    _cacheBySpan.Remove(CacheKey(key));
                    events.Add(new LeaseEvent(LeaseEventType.Removed, cached));
                }

                continue;
            }

            if (cached is not null && kv.ModRevision <= cached.Revision)
            {
                continue; // A re-delivery of a revision already applied.
            }

            EtcdLeaseRecord? record = Parse(kv, now);
            if (record is not { ValueIsValid: true })
            {
                if (cached is not null)
                {
                    // The lease was overwritten with something unreadable: it no longer describes a usable peer.
                    _cacheBySpan.Remove(CacheKey(key));
                    events.Add(new LeaseEvent(LeaseEventType.Removed, cached));
                }

                continue;
            }

            // Every new revision is reported, renewals included: whether the peers changed is the agent's lease set's
            // call, made once for every store.
            Cache(record);
            events.Add(new LeaseEvent(LeaseEventType.Added, record.Lease));
        }

        return events;
    }

    private EtcdLeaseRecord? Parse(KeyValue kv, DateTimeOffset now)
    {
        EtcdLeaseRecord? record = EtcdLeaseRecord.TryParse(kv, _keys, now, _ttl, out string? problem);
        if (_reported.Count > MaxReported)
        {
            _reported.Clear(); // Bounded memory; at worst a bad key is reported once more.
        }

        if (problem is not null && _reported.Add((kv.Key.ToStringUtf8(), kv.ModRevision)))
        {
            Log.BadLease(_logger, kv.Key.ToStringUtf8(), problem);
        }

        return record;
    }
}
