using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Mvccpb;

namespace Flannel.Store.Etcd.Tests.Fakes;

/// <summary>
/// An in-memory etcd behind the store's <see cref="IEtcdKeyValue"/> seam, with etcd 3.4's semantics for what the
/// store uses: one revision per write transaction, create/mod revisions and versions, compares on version, create,
/// mod revision and value, prefix ranges, leases whose expiry (on <see cref="TimeProvider"/>) or revocation deletes
/// their keys, watches that replay history from a start revision and report a compacted one with
/// <c>CompactRevision</c>, and etcd's error texts. <c>EtcdKeyValueConformance</c> runs the same checks against this
/// fake and against a real etcd.
/// </summary>
/// <remarks>
/// Test controls: <see cref="Compact"/>, <see cref="FailNextCalls"/> (the next unary calls fail with
/// <c>Unavailable</c>, as a member that is down), <see cref="BreakWatches"/> (open watches fail, as a dropped
/// connection), <see cref="Calls"/> (how many unary calls were made), <see cref="RangeListings"/> (how many of them listed a prefix) and <see cref="OpenWatches"/>.
/// </remarks>
internal sealed class InMemoryEtcd : IEtcdKeyValue
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private readonly SortedDictionary<ByteString, KeyValue> _keys = new(ByteStringComparer.Instance);
    private readonly List<(long Revision, Event Event)> _history = [];
    private readonly Dictionary<long, FakeLease> _leases = [];
    private readonly List<FakeWatch> _watches = [];
    private long _revision = 1;
    private long _compacted;
    private long _nextWatchId;
    private int _failNext;
    private int _calls;
    private int _rangeListings;

    public InMemoryEtcd(TimeProvider? time = null) => _time = time ?? TimeProvider.System;

    public string EndpointsText => "fake://in-memory";

    public bool IsTls => false;

    /// <summary>The current revision.</summary>
    public long Revision
    {
        get
        {
            lock (_gate)
            {
                return _revision;
            }
        }
    }

    /// <summary>The number of unary calls made so far (failed ones included).</summary>
    public int Calls => Volatile.Read(ref _calls);

    /// <summary>The number of range calls over a key range (a prefix list), as opposed to one key.</summary>
    public int RangeListings => Volatile.Read(ref _rangeListings);

    /// <summary>The number of watches currently open.</summary>
    public int OpenWatches
    {
        get
        {
            lock (_gate)
            {
                return _watches.Count;
            }
        }
    }

    /// <summary>Makes the next <paramref name="count"/> unary calls fail with <c>Unavailable</c>.</summary>
    public void FailNextCalls(int count) => Volatile.Write(ref _failNext, count);

    /// <summary>Forgets the history up to <paramref name="revision"/>, as <c>etcdctl compact</c> does.</summary>
    public void Compact(long revision)
    {
        lock (_gate)
        {
            if (revision <= _compacted)
            {
                throw new RpcException(new Status(StatusCode.OutOfRange, "etcdserver: mvcc: required revision has been compacted"));
            }

            if (revision > _revision)
            {
                throw new RpcException(new Status(StatusCode.OutOfRange, "etcdserver: mvcc: required revision is a future revision"));
            }

            _compacted = revision;
            _history.RemoveAll(h => h.Revision <= revision);
        }
    }

    /// <summary>Ends every open watch with an I/O error, as a dropped connection does.</summary>
    public void BreakWatches()
    {
        lock (_gate)
        {
            foreach (FakeWatch watch in _watches)
            {
                watch.Responses.Writer.TryComplete(new IOException("the fake etcd dropped the connection"));
            }
        }
    }

    public Task<RangeResponse> RangeAsync(RangeRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        Enter(cancellationToken);
        if (!request.RangeEnd.IsEmpty)
        {
            Interlocked.Increment(ref _rangeListings);
        }

        lock (_gate)
        {
            ExpireLeases();
            var response = new RangeResponse { Header = Header() };
            foreach (KeyValue kv in Select(request.Key, request.RangeEnd))
            {
                response.Kvs.Add(kv.Clone());
            }

            response.Count = response.Kvs.Count;
            return Task.FromResult(response);
        }
    }

    public Task<TxnResponse> TxnAsync(TxnRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        Enter(cancellationToken);
        lock (_gate)
        {
            ExpireLeases();
            bool succeeded = request.Compare.All(Holds);
            IList<RequestOp> ops = succeeded ? request.Success : request.Failure;

            // etcd checks the leases of the branch it runs before applying anything.
            foreach (RequestOp op in ops)
            {
                if (op.RequestPut is { Lease: not 0 } put && !_leases.ContainsKey(put.Lease))
                {
                    throw LeaseNotFound();
                }
            }

            bool writes = ops.Any(o => o.RequestPut is not null || o.RequestDeleteRange is not null);
            long revision = writes ? _revision + 1 : _revision;
            var events = new List<Event>();
            var response = new TxnResponse { Succeeded = succeeded };
            foreach (RequestOp op in ops)
            {
                var reply = new ResponseOp();
                if (op.RequestPut is { } put)
                {
                    events.Add(Put(put.Key, put.Value, put.Lease, revision));
                    reply.ResponsePut = new PutResponse();
                }
                else if (op.RequestDeleteRange is { } delete)
                {
                    List<Event> deleted = Delete(delete.Key, delete.RangeEnd, revision);
                    events.AddRange(deleted);
                    reply.ResponseDeleteRange = new DeleteRangeResponse { Deleted = deleted.Count };
                }
                else if (op.RequestRange is { } range)
                {
                    var rangeResponse = new RangeResponse();
                    rangeResponse.Kvs.AddRange(Select(range.Key, range.RangeEnd).Select(kv => kv.Clone()));
                    rangeResponse.Count = rangeResponse.Kvs.Count;
                    reply.ResponseRange = rangeResponse;
                }

                response.Responses.Add(reply);
            }

            Commit(revision, events);
            response.Header = Header();
            return Task.FromResult(response);
        }
    }

    public Task<LeaseGrantResponse> LeaseGrantAsync(LeaseGrantRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        Enter(cancellationToken);
        lock (_gate)
        {
            long id = request.ID != 0 ? request.ID : Random.Shared.NextInt64(1, long.MaxValue);
            if (_leases.ContainsKey(id))
            {
                throw new RpcException(new Status(StatusCode.FailedPrecondition, "etcdserver: lease already exists"));
            }

            var lease = new FakeLease(id, request.TTL, _time.GetUtcNow() + TimeSpan.FromSeconds(request.TTL));
            _leases[id] = lease;
            lease.Timer = _time.CreateTimer(_ => Expire(id), null, TimeSpan.FromSeconds(request.TTL), Timeout.InfiniteTimeSpan);
            return Task.FromResult(new LeaseGrantResponse { ID = id, TTL = request.TTL, Header = Header() });
        }
    }

    public Task<LeaseRevokeResponse> LeaseRevokeAsync(LeaseRevokeRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        Enter(cancellationToken);
        lock (_gate)
        {
            ExpireLeases();
            if (!_leases.ContainsKey(request.ID))
            {
                throw LeaseNotFound();
            }

            RemoveLease(request.ID);
            return Task.FromResult(new LeaseRevokeResponse { Header = Header() });
        }
    }

    public Task<LeaseTimeToLiveResponse> LeaseTimeToLiveAsync(LeaseTimeToLiveRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        Enter(cancellationToken);
        lock (_gate)
        {
            ExpireLeases();
            var response = new LeaseTimeToLiveResponse { ID = request.ID, Header = Header() };
            if (!_leases.TryGetValue(request.ID, out FakeLease? lease))
            {
                response.TTL = -1;
                return Task.FromResult(response);
            }

            response.TTL = (long)Math.Ceiling((lease.Expiry - _time.GetUtcNow()).TotalSeconds);
            response.GrantedTTL = lease.GrantedTtl;
            if (request.Keys)
            {
                response.Keys.AddRange(_keys.Values.Where(kv => kv.Lease == lease.Id).Select(kv => kv.Key));
            }

            return Task.FromResult(response);
        }
    }

    public Task<LeaseKeepAliveResponse> LeaseKeepAliveOnceAsync(long leaseId, CancellationToken cancellationToken)
    {
        Enter(cancellationToken);
        lock (_gate)
        {
            ExpireLeases();
            if (!_leases.TryGetValue(leaseId, out FakeLease? lease))
            {
                return Task.FromResult(new LeaseKeepAliveResponse { ID = leaseId, TTL = 0, Header = Header() });
            }

            lease.Expiry = _time.GetUtcNow() + TimeSpan.FromSeconds(lease.GrantedTtl);
            lease.Timer?.Change(TimeSpan.FromSeconds(lease.GrantedTtl), Timeout.InfiniteTimeSpan);
            return Task.FromResult(new LeaseKeepAliveResponse { ID = leaseId, TTL = lease.GrantedTtl, Header = Header() });
        }
    }

    public async IAsyncEnumerable<WatchResponse> WatchAsync(WatchCreateRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        cancellationToken.ThrowIfCancellationRequested();
        FakeWatch watch;
        lock (_gate)
        {
            watch = new FakeWatch(_nextWatchId++, request.Key, request.RangeEnd);
            watch.Responses.Writer.TryWrite(new WatchResponse { Header = Header(), WatchId = watch.Id, Created = true });
            if (request.StartRevision > 0 && request.StartRevision <= _compacted)
            {
                // etcd creates the watch, then cancels it: the history it asks for is gone.
                watch.Responses.Writer.TryWrite(new WatchResponse
                {
                    Header = Header(),
                    WatchId = watch.Id,
                    Canceled = true,
                    CompactRevision = _compacted,
                    CancelReason = "mvcc: required revision has been compacted",
                });
                watch.Responses.Writer.TryComplete();
            }
            else
            {
                long from = request.StartRevision > 0 ? request.StartRevision : _revision + 1;
                foreach (IGrouping<long, (long Revision, Event Event)> batch in _history
                    .Where(h => h.Revision >= from && watch.Matches(h.Event.Kv.Key))
                    .GroupBy(h => h.Revision))
                {
                    var response = new WatchResponse { Header = Header(), WatchId = watch.Id };
                    response.Events.AddRange(batch.Select(h => h.Event.Clone()));
                    watch.Responses.Writer.TryWrite(response);
                }

                _watches.Add(watch);
            }
        }

        try
        {
            await foreach (WatchResponse response in watch.Responses.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return response;
            }
        }
        finally
        {
            lock (_gate)
            {
                _watches.Remove(watch);
            }
        }

        // A compacted start ends the stream after its Canceled response; anything else that ends is a broken stream.
        throw new IOException("the fake etcd closed the watch stream");
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (FakeLease lease in _leases.Values)
            {
                lease.Timer?.Dispose();
            }

            foreach (FakeWatch watch in _watches)
            {
                watch.Responses.Writer.TryComplete();
            }
        }
    }

    private static RpcException LeaseNotFound() => new(new Status(StatusCode.NotFound, "etcdserver: requested lease not found"));

    private void Enter(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Interlocked.Increment(ref _calls);
        if (Volatile.Read(ref _failNext) > 0 && Interlocked.Decrement(ref _failNext) >= 0)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "the fake etcd member is down"));
        }
    }

    private ResponseHeader Header() => new() { Revision = _revision, ClusterId = 0xfa4e, MemberId = 1, RaftTerm = 2 };

    private IEnumerable<KeyValue> Select(ByteString key, ByteString rangeEnd)
    {
        if (rangeEnd.IsEmpty)
        {
            return _keys.TryGetValue(key, out KeyValue? one) ? [one] : [];
        }

        return _keys.Values.Where(kv => InRange(kv.Key, key, rangeEnd)).ToList();
    }

    private static bool InRange(ByteString key, ByteString start, ByteString end) =>
        ByteStringComparer.Instance.Compare(key, start) >= 0
        && ((end.Length == 1 && end[0] == 0) || ByteStringComparer.Instance.Compare(key, end) < 0);

    private bool Holds(Compare compare)
    {
        if (compare.RangeEnd.IsEmpty)
        {
            _keys.TryGetValue(compare.Key, out KeyValue? one);
            return Holds(compare, one);
        }

        // etcd: a compare over [key, range_end) must hold for every key in it; over an empty range it is made
        // against an absent key (all revisions 0).
        List<KeyValue> inRange = Select(compare.Key, compare.RangeEnd).ToList();
        return inRange.Count == 0 ? Holds(compare, null) : inRange.All(kv => Holds(compare, kv));
    }

    private static bool Holds(Compare compare, KeyValue? kv)
    {
        int order = compare.Target switch
        {
            Compare.Types.CompareTarget.Version => (kv?.Version ?? 0).CompareTo(compare.Version),
            Compare.Types.CompareTarget.Create => (kv?.CreateRevision ?? 0).CompareTo(compare.CreateRevision),
            Compare.Types.CompareTarget.Mod => (kv?.ModRevision ?? 0).CompareTo(compare.ModRevision),
            Compare.Types.CompareTarget.Value => kv is null ? -2 : ByteStringComparer.Instance.Compare(kv.Value, compare.Value),
            Compare.Types.CompareTarget.Lease => (kv?.Lease ?? 0).CompareTo(compare.Lease),
            _ => throw new NotSupportedException($"compare target {compare.Target}"),
        };

        // etcd: a value compare of a missing key is false whatever the operator.
        if (order == -2)
        {
            return false;
        }

        return compare.Result switch
        {
            Compare.Types.CompareResult.Equal => order == 0,
            Compare.Types.CompareResult.NotEqual => order != 0,
            Compare.Types.CompareResult.Greater => order > 0,
            Compare.Types.CompareResult.Less => order < 0,
            _ => throw new NotSupportedException($"compare result {compare.Result}"),
        };
    }

    private Event Put(ByteString key, ByteString value, long lease, long revision)
    {
        _keys.TryGetValue(key, out KeyValue? old);
        var kv = new KeyValue
        {
            Key = key,
            Value = value,
            Lease = lease,
            CreateRevision = old?.CreateRevision ?? revision,
            ModRevision = revision,
            Version = (old?.Version ?? 0) + 1,
        };
        _keys[key] = kv;
        return new Event { Type = Event.Types.EventType.Put, Kv = kv.Clone() };
    }

    private List<Event> Delete(ByteString key, ByteString rangeEnd, long revision)
    {
        var events = new List<Event>();
        foreach (KeyValue kv in Select(key, rangeEnd).ToList())
        {
            _keys.Remove(kv.Key);
            events.Add(new Event { Type = Event.Types.EventType.Delete, Kv = new KeyValue { Key = kv.Key, ModRevision = revision } });
        }

        return events;
    }

    private void Commit(long revision, List<Event> events)
    {
        if (revision == _revision)
        {
            return;
        }

        _revision = revision;
        foreach (Event ev in events)
        {
            _history.Add((revision, ev));
        }

        foreach (FakeWatch watch in _watches)
        {
            List<Event> matching = events.Where(e => watch.Matches(e.Kv.Key)).ToList();
            if (matching.Count > 0)
            {
                var response = new WatchResponse { Header = Header(), WatchId = watch.Id };
                response.Events.AddRange(matching.Select(e => e.Clone()));
                watch.Responses.Writer.TryWrite(response);
            }
        }
    }

    private void Expire(long id)
    {
        lock (_gate)
        {
            if (_leases.TryGetValue(id, out FakeLease? lease) && lease.Expiry <= _time.GetUtcNow())
            {
                RemoveLease(id);
            }
        }
    }

    /// <summary>etcd's lessor revokes an expired lease on its own; calls also catch up in case a timer has not fired yet.</summary>
    private void ExpireLeases()
    {
        DateTimeOffset now = _time.GetUtcNow();
        foreach (FakeLease lease in _leases.Values.Where(l => l.Expiry <= now).ToList())
        {
            RemoveLease(lease.Id);
        }
    }

    private void RemoveLease(long id)
    {
        FakeLease lease = _leases[id];
        _leases.Remove(id);
        lease.Timer?.Dispose();
        List<KeyValue> attached = _keys.Values.Where(kv => kv.Lease == id).ToList();
        if (attached.Count == 0)
        {
            return;
        }

        long revision = _revision + 1;
        var events = new List<Event>();
        foreach (KeyValue kv in attached)
        {
            events.AddRange(Delete(kv.Key, ByteString.Empty, revision));
        }

        Commit(revision, events);
    }

    private sealed class FakeLease(long id, long grantedTtl, DateTimeOffset expiry)
    {
        public long Id { get; } = id;

        public long GrantedTtl { get; } = grantedTtl;

        public DateTimeOffset Expiry { get; set; } = expiry;

        public ITimer? Timer { get; set; }
    }

    private sealed class FakeWatch(long id, ByteString key, ByteString rangeEnd)
    {
        public long Id { get; } = id;

        public Channel<WatchResponse> Responses { get; } = Channel.CreateUnbounded<WatchResponse>(new UnboundedChannelOptions { SingleReader = true });

        public bool Matches(ByteString candidate) =>
            rangeEnd.IsEmpty ? candidate.Equals(key) : InRange(candidate, key, rangeEnd);
    }

    /// <summary>etcd orders keys byte by byte.</summary>
    private sealed class ByteStringComparer : IComparer<ByteString>
    {
        public static ByteStringComparer Instance { get; } = new();

        public int Compare(ByteString? x, ByteString? y) => x!.Span.SequenceCompareTo(y!.Span);
    }
}
