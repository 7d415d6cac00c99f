using System.Security.Cryptography;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Mvccpb;

namespace Flannel.Store.Etcd.Tests.Conformance;

/// <summary>
/// What the store relies on from etcd, checked against both sides of the <see cref="IEtcdKeyValue"/> seam: the
/// in-memory fake (unit tests) and <see cref="EtcdConnection"/> against a real etcd 3.4 (integration tests). A fake
/// that passes here can stand in for etcd in the store's unit tests.
/// </summary>
public abstract class EtcdKeyValueConformance : IAsyncLifetime
{
    private IEtcdKeyValue? _etcd;

    private protected IEtcdKeyValue Etcd => _etcd ?? throw new InvalidOperationException("not initialised");

    /// <summary>A prefix no other test uses (a real etcd is shared by a test class).</summary>
    protected string Prefix { get; } = "/conformance-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)) + "/";

    private protected abstract Task<IEtcdKeyValue> ConnectAsync();

    /// <summary>Compacts the history up to <paramref name="revision"/>.</summary>
    protected abstract Task CompactAsync(long revision);

    /// <summary>Lets <paramref name="duration"/> pass for the etcd (real time, or a fake clock).</summary>
    protected abstract Task ElapseAsync(TimeSpan duration);

    public async ValueTask InitializeAsync() => _etcd = await ConnectAsync();

    public ValueTask DisposeAsync()
    {
        _etcd?.Dispose();
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    // Self-contained (no unit-project helpers): the integration project compiles this file too, for the real etcd.
    private static CancellationToken Timeout()
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(TimeSpan.FromSeconds(30));
        return cts.Token;
    }

    private ByteString Key(string name) => ByteString.CopyFromUtf8(Prefix + name);

    private static TxnRequest CreateIfAbsent(ByteString key, string value, long lease = 0)
    {
        var txn = new TxnRequest();
        txn.Compare.Add(new Compare { Key = key, Target = Compare.Types.CompareTarget.Version, Result = Compare.Types.CompareResult.Equal, Version = 0 });
        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = key, Value = ByteString.CopyFromUtf8(value), Lease = lease } });
        return txn;
    }

    private static TxnRequest PutIfModRevision(ByteString key, long modRevision, string value)
    {
        var txn = new TxnRequest();
        txn.Compare.Add(new Compare { Key = key, Target = Compare.Types.CompareTarget.Mod, Result = Compare.Types.CompareResult.Equal, ModRevision = modRevision });
        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = key, Value = ByteString.CopyFromUtf8(value) } });
        return txn;
    }

    private static TxnRequest DeleteIfModRevision(ByteString key, long modRevision)
    {
        var txn = new TxnRequest();
        txn.Compare.Add(new Compare { Key = key, Target = Compare.Types.CompareTarget.Mod, Result = Compare.Types.CompareResult.Equal, ModRevision = modRevision });
        txn.Success.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = key } });
        return txn;
    }

    private async Task<KeyValue?> GetAsync(ByteString key)
    {
        RangeResponse response = await Etcd.RangeAsync(new RangeRequest { Key = key }, Timeout());
        return response.Kvs.SingleOrDefault();
    }

    [Fact]
    public async Task Create_if_absent_succeeds_once_and_a_write_moves_the_revision_by_one()
    {
        ByteString key = Key("subnets/10.5.1.0-24");
        long before = (await Etcd.RangeAsync(new RangeRequest { Key = key }, Timeout())).Header.Revision;

        TxnResponse first = await Etcd.TxnAsync(CreateIfAbsent(key, "a"), Timeout());
        TxnResponse second = await Etcd.TxnAsync(CreateIfAbsent(key, "b"), Timeout());

        Assert.True(first.Succeeded);
        Assert.Equal(before + 1, first.Header.Revision);
        Assert.False(second.Succeeded);
        Assert.Equal(first.Header.Revision, second.Header.Revision);
        KeyValue kv = Assert.IsType<KeyValue>(await GetAsync(key));
        Assert.Equal("a", kv.Value.ToStringUtf8());
        Assert.Equal(1, kv.Version);
        Assert.Equal(first.Header.Revision, kv.CreateRevision);
        Assert.Equal(first.Header.Revision, kv.ModRevision);
        Assert.Equal(0, kv.Lease);
    }

    [Fact]
    public async Task Compare_and_swap_on_the_mod_revision_wins_only_with_the_revision_read()
    {
        ByteString key = Key("subnets/10.5.2.0-24");
        long created = (await Etcd.TxnAsync(CreateIfAbsent(key, "a"), Timeout())).Header.Revision;

        TxnResponse rewritten = await Etcd.TxnAsync(PutIfModRevision(key, created, "b"), Timeout());
        TxnResponse stale = await Etcd.TxnAsync(PutIfModRevision(key, created, "c"), Timeout());
        TxnResponse staleDelete = await Etcd.TxnAsync(DeleteIfModRevision(key, created), Timeout());

        Assert.True(rewritten.Succeeded);
        Assert.False(stale.Succeeded);
        Assert.False(staleDelete.Succeeded);
        KeyValue kv = Assert.IsType<KeyValue>(await GetAsync(key));
        Assert.Equal("b", kv.Value.ToStringUtf8());
        Assert.Equal(2, kv.Version);
        Assert.Equal(created, kv.CreateRevision);
        Assert.Equal(rewritten.Header.Revision, kv.ModRevision);

        TxnResponse deleted = await Etcd.TxnAsync(DeleteIfModRevision(key, kv.ModRevision), Timeout());
        Assert.True(deleted.Succeeded);
        Assert.Equal(1, deleted.Responses[0].ResponseDeleteRange.Deleted);
        Assert.Null(await GetAsync(key));
    }

    [Fact]
    public async Task A_compare_over_a_key_range_holds_only_when_it_holds_for_every_key_in_it()
    {
        // The dual-stack creation guard: "no key under the prefix was created after revision R".
        long first = (await Etcd.TxnAsync(CreateIfAbsent(Key("guard/subnets/a"), "a"), Timeout())).Header.Revision;
        long second = (await Etcd.TxnAsync(CreateIfAbsent(Key("guard/subnets/b"), "b"), Timeout())).Header.Revision;
        RangeRequest subnets = EtcdKeyLayout.PrefixRange(Prefix + "guard/subnets/");
        RangeRequest empty = EtcdKeyLayout.PrefixRange(Prefix + "guard/none/");

        TxnRequest CreatedBefore(RangeRequest range, long revision)
        {
            var txn = new TxnRequest();
            txn.Compare.Add(new Compare { Key = range.Key, RangeEnd = range.RangeEnd, Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Less, CreateRevision = revision });
            return txn;
        }

        Assert.False((await Etcd.TxnAsync(CreatedBefore(subnets, second), Timeout())).Succeeded); // b was created at `second`
        Assert.True((await Etcd.TxnAsync(CreatedBefore(subnets, second + 1), Timeout())).Succeeded);
        Assert.True((await Etcd.TxnAsync(CreatedBefore(empty, first), Timeout())).Succeeded); // no key: compared as absent
    }

    [Fact]
    public async Task A_prefix_range_returns_the_keys_under_the_prefix_in_byte_order()
    {
        foreach (string name in new[] { "subnets/10.5.3.0-24", "subnets/10.5.10.0-24", "subnets/10.5.2.0-24", "config", "subnetsX" })
        {
            await Etcd.TxnAsync(CreateIfAbsent(Key(name), name), Timeout());
        }

        RangeResponse response = await Etcd.RangeAsync(EtcdKeyLayout.PrefixRange(Prefix + "subnets/"), Timeout());

        Assert.Equal(
            [Prefix + "subnets/10.5.10.0-24", Prefix + "subnets/10.5.2.0-24", Prefix + "subnets/10.5.3.0-24"],
            response.Kvs.Select(kv => kv.Key.ToStringUtf8()));
        Assert.Empty((await Etcd.RangeAsync(new RangeRequest { Key = Key("missing") }, Timeout())).Kvs);
    }

    [Fact]
    public async Task A_key_put_with_a_lease_goes_when_the_lease_is_revoked()
    {
        LeaseGrantResponse grant = await Etcd.LeaseGrantAsync(new LeaseGrantRequest { TTL = 60 }, Timeout());
        ByteString key = Key("subnets/10.5.4.0-24");
        Assert.True((await Etcd.TxnAsync(CreateIfAbsent(key, "a", grant.ID), Timeout())).Succeeded);
        Assert.Equal(grant.ID, (await GetAsync(key))!.Lease);

        LeaseTimeToLiveResponse ttl = await Etcd.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = grant.ID, Keys = true }, Timeout());
        Assert.InRange(ttl.TTL, 50, 60);
        Assert.Equal([key], ttl.Keys);
        Assert.Equal(60, (await Etcd.LeaseKeepAliveOnceAsync(grant.ID, Timeout())).TTL);

        await Etcd.LeaseRevokeAsync(new LeaseRevokeRequest { ID = grant.ID }, Timeout());

        Assert.Null(await GetAsync(key));
        Assert.Equal(-1, (await Etcd.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = grant.ID }, Timeout())).TTL);
        Assert.True((await Etcd.LeaseKeepAliveOnceAsync(grant.ID, Timeout())).TTL <= 0);
    }

    [Fact]
    public async Task Unknown_leases_fail_with_etcds_lease_not_found()
    {
        const long Unknown = 0x7e57_0000_0001;
        RpcException put = await Assert.ThrowsAsync<RpcException>(() => Etcd.TxnAsync(CreateIfAbsent(Key("subnets/10.5.5.0-24"), "a", Unknown), Timeout()));
        RpcException revoke = await Assert.ThrowsAsync<RpcException>(() => Etcd.LeaseRevokeAsync(new LeaseRevokeRequest { ID = Unknown }, Timeout()));

        Assert.True(EtcdErrors.IsLeaseNotFound(put), put.Status.ToString());
        Assert.True(EtcdErrors.IsLeaseNotFound(revoke), revoke.Status.ToString());
        Assert.Null(await GetAsync(Key("subnets/10.5.5.0-24")));
    }

    [Fact]
    public async Task An_expired_lease_deletes_its_keys_and_watchers_see_the_delete()
    {
        LeaseGrantResponse grant = await Etcd.LeaseGrantAsync(new LeaseGrantRequest { TTL = 2 }, Timeout());
        ByteString key = Key("subnets/10.5.6.0-24");
        TxnResponse created = await Etcd.TxnAsync(CreateIfAbsent(key, "a", grant.ID), Timeout());
        await using IAsyncEnumerator<WatchResponse> watch = Etcd.WatchAsync(
            new WatchCreateRequest { Key = key, StartRevision = created.Header.Revision + 1 }, Timeout()).GetAsyncEnumerator(TestContext.Current.CancellationToken);
        Assert.True(await watch.MoveNextAsync());
        Assert.True(watch.Current.Created);

        await ElapseAsync(TimeSpan.FromSeconds(4));

        Event deleted = await NextEventAsync(watch);
        Assert.Equal(Event.Types.EventType.Delete, deleted.Type);
        Assert.Equal(key, deleted.Kv.Key);
        Assert.Null(await GetAsync(key));
    }

    [Fact]
    public async Task A_watch_replays_from_its_start_revision_then_follows_live_changes()
    {
        ByteString prefixEnd = EtcdKeyLayout.PrefixEnd(Prefix + "subnets/");
        long a = (await Etcd.TxnAsync(CreateIfAbsent(Key("subnets/10.5.7.0-24"), "a"), Timeout())).Header.Revision;
        long b = (await Etcd.TxnAsync(CreateIfAbsent(Key("subnets/10.5.8.0-24"), "b"), Timeout())).Header.Revision;
        await Etcd.TxnAsync(CreateIfAbsent(Key("config"), "not watched"), Timeout());

        await using IAsyncEnumerator<WatchResponse> watch = Etcd.WatchAsync(
            new WatchCreateRequest { Key = Key("subnets/"), RangeEnd = prefixEnd, StartRevision = b, ProgressNotify = true }, Timeout()).GetAsyncEnumerator(TestContext.Current.CancellationToken);
        Assert.True(await watch.MoveNextAsync());
        Assert.True(watch.Current.Created);

        Event replayed = await NextEventAsync(watch);
        Assert.Equal((Event.Types.EventType.Put, "b", b), (replayed.Type, replayed.Kv.Value.ToStringUtf8(), replayed.Kv.ModRevision));

        long deleted = (await Etcd.TxnAsync(DeleteIfModRevision(Key("subnets/10.5.7.0-24"), a), Timeout())).Header.Revision;
        Event live = await NextEventAsync(watch);
        Assert.Equal((Event.Types.EventType.Delete, Prefix + "subnets/10.5.7.0-24", deleted), (live.Type, live.Kv.Key.ToStringUtf8(), live.Kv.ModRevision));
    }

    [Fact]
    public async Task A_watch_from_a_compacted_revision_is_canceled_with_the_compact_revision()
    {
        ByteString key = Key("subnets/10.5.9.0-24");
        long first = (await Etcd.TxnAsync(CreateIfAbsent(key, "a"), Timeout())).Header.Revision;
        long second = (await Etcd.TxnAsync(PutIfModRevision(key, first, "b"), Timeout())).Header.Revision;
        await CompactAsync(second);

        await using IAsyncEnumerator<WatchResponse> watch = Etcd.WatchAsync(new WatchCreateRequest { Key = key, StartRevision = first }, Timeout()).GetAsyncEnumerator(TestContext.Current.CancellationToken);
        WatchResponse canceled;
        do
        {
            Assert.True(await watch.MoveNextAsync(), "the watch ended without a cancel");
            canceled = watch.Current;
        }
        while (!canceled.Canceled);

        Assert.Equal(second, canceled.CompactRevision);
    }

    private static async Task<Event> NextEventAsync(IAsyncEnumerator<WatchResponse> watch)
    {
        while (true)
        {
            Assert.True(await watch.MoveNextAsync(), "the watch ended");
            if (watch.Current.Events.Count > 0)
            {
                return Assert.Single(watch.Current.Events);
            }
        }
    }
}
