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
/// <item>list <c>&lt;prefix&gt;/subnets/</c> and emit the snapshot;</item>
/// <item>watch the prefix from the list's revision + 1 (so nothing between list and watch is lost);</item>
/// <item>turn PUTs into Added (skipping a re-delivery whose value is unchanged) and DELETEs (including TTL
/// expiry) into Removed carrying the cached attributes;</item>
/// <item>when etcd cancels the watch (compaction: the revision we resume from is gone), list again and emit
/// a new snapshot for the consumer to diff;</item>
/// <item>when the stream breaks (member down, connection lost), reconnect with backoff from 100 ms to 5 s and
/// resume after the last revision seen.</item>
/// </list>
/// Keys that do not name a subnet and values that are not lease JSON are skipped with a warning naming the
/// key; the watch goes on.
/// </summary>
internal sealed class EtcdLeaseWatchSession : IAsyncDisposable
{
    private static readonly TimeSpan InitialBackoff = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);
    private readonly EtcdConnection _etcd;
    private readonly EtcdKeyLayout _keys;
    private readonly TimeSpan _ttl;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly string _endpoints;
    private readonly Action<string?> _reportHealth;
    private readonly Dictionary<string, EtcdLeaseRecord> _cache = new(StringComparer.Ordinal);
    private readonly HashSet<(string Key, long Revision)> _reported = [];
    private const int MaxReported = 10_000;
    private AsyncDuplexStreamingCall<WatchRequest, WatchResponse>? _call;
    private CancellationTokenSource? _callCancellation;
    private long _nextRevision;
    private bool _needsSnapshot = true;
    private TimeSpan _backoff = InitialBackoff;

    /// <summary>
    /// Creates the session. <c>reportHealth</c> is told why the watch is down while it reconnects, and null once etcd
    /// answers again, so the agent's readiness can fall back during an outage that this session otherwise hides by
    /// retrying.
    /// </summary>
    public EtcdLeaseWatchSession(EtcdConnection etcd, EtcdKeyLayout keys, TimeSpan ttl, ILogger logger, TimeProvider time, string endpoints, Action<string?> reportHealth)
    {
        _reportHealth = reportHealth;
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

                if (_call is null)
                {
                    await OpenAsync(cancellationToken).ConfigureAwait(false);
                }

                if (!await _call!.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
                {
                    throw new IOException("etcd closed the watch stream.");
                }

                WatchResponse response = _call.ResponseStream.Current;
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
                    _backoff = InitialBackoff;
                    // A progress notification: every event up to the header revision has been delivered.
                    if (!response.Created)
                    {
                        _nextRevision = Math.Max(_nextRevision, response.Header.Revision + 1);
                    }

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

                if (ex is RpcException rpc)
                {
                    _etcd.InvalidateToken(rpc);
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
        string prefix = _keys.SubnetsPrefix;
        RangeResponse response = await _etcd.CallAsync(
            (c, d, t) => c.GetAsync(
                new RangeRequest { Key = ByteString.CopyFromUtf8(prefix), RangeEnd = ByteString.CopyFromUtf8(dotnet_etcd.EtcdClient.GetRangeEnd(prefix)) },
                null,
                d,
                t),
            cancellationToken).ConfigureAwait(false);
        _cache.Clear();
        DateTimeOffset now = _time.GetUtcNow();
        foreach (KeyValue kv in response.Kvs)
        {
            if (Parse(kv, now) is { ValueIsValid: true } record)
            {
                _cache[record.Key] = record;
            }
        }

        _nextRevision = response.Header.Revision + 1;
        _needsSnapshot = false;
        return LeaseWatchResult.FromSnapshot(_cache.Values.OrderBy(r => r.Key, StringComparer.Ordinal).Select(r => r.Lease).ToList());
    }

    private async Task OpenAsync(CancellationToken cancellationToken)
    {
        await _etcd.EnsureAuthenticatedAsync(cancellationToken).ConfigureAwait(false);
        _callCancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _call = _etcd.Watch.Watch(EtcdConnection.RequireLeaderHeaders, cancellationToken: _callCancellation.Token);
        string prefix = _keys.SubnetsPrefix;
        await _call.RequestStream.WriteAsync(
            new WatchRequest
            {
                CreateRequest = new WatchCreateRequest
                {
                    Key = ByteString.CopyFromUtf8(prefix),
                    RangeEnd = ByteString.CopyFromUtf8(dotnet_etcd.EtcdClient.GetRangeEnd(prefix)),
                    StartRevision = _nextRevision,
                    ProgressNotify = true,
                },
            },
            cancellationToken).ConfigureAwait(false);
    }

    private async Task CloseAsync()
    {
        AsyncDuplexStreamingCall<WatchRequest, WatchResponse>? call = _call;
        CancellationTokenSource? cts = _callCancellation;
        _call = null;
        _callCancellation = null;
        if (cts is not null)
        {
            await cts.CancelAsync().ConfigureAwait(false);
            cts.Dispose();
        }

        call?.Dispose();
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
            _cache.TryGetValue(key, out EtcdLeaseRecord? cached);
            if (ev.Type == Event.Types.EventType.Delete)
            {
                if (cached is not null)
                {
                    _cache.Remove(key);
                    events.Add(new LeaseEvent(LeaseEventType.Removed, cached.Lease));
                }

                continue;
            }

            if (cached is not null && kv.ModRevision <= cached.ModRevision)
            {
                continue; // A re-delivery of a revision already applied.
            }

            EtcdLeaseRecord? record = Parse(kv, now);
            if (record is not { ValueIsValid: true })
            {
                if (cached is not null)
                {
                    // The lease was overwritten with something unreadable: it no longer describes a usable peer.
                    _cache.Remove(key);
                    events.Add(new LeaseEvent(LeaseEventType.Removed, cached.Lease));
                }

                continue;
            }

            _cache[key] = record;
            if (cached is not null && cached.Value.Equals(record.Value) && cached.IsReservation == record.IsReservation)
            {
                continue; // Same value re-written (a renewal by a Go flanneld): nothing changed for the peers.
            }

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
