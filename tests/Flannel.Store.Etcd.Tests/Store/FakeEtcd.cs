using Etcdserverpb;
using Flannel.Store.Etcd.Tests.Fakes;
using Flannel.Subnets;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Flannel.Testing;

namespace Flannel.Store.Etcd.Tests.Store;

/// <summary>
/// Stores over one <see cref="InMemoryEtcd"/>, with etcdctl's moves (put, delete, get, revoke) done directly on it,
/// and every store's log in <see cref="Log"/>.
/// </summary>
internal sealed class FakeEtcd : IDisposable
{
    public const string Prefix = "/coreos.com/network";

    private readonly List<EtcdSubnetStore> _stores = [];

    public FakeEtcd(TimeProvider? time = null)
    {
        Time = time ?? TimeProvider.System;
        Etcd = new InMemoryEtcd(Time);
    }

    public InMemoryEtcd Etcd { get; }

    public TimeProvider Time { get; }

    public StoreLog Log { get; } = new();

    public static CancellationToken Timeout(int seconds = 20)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(TimeSpan.FromSeconds(seconds));
        return cts.Token;
    }

    public static string Key(string subnetKey) => $"{Prefix}/subnets/{subnetKey}";

    public EtcdSubnetStore Store(Action<EtcdSubnetStoreOptions>? configure = null, IEtcdKeyValue? etcd = null)
    {
        var options = new EtcdSubnetStoreOptions { Prefix = Prefix, RequestTimeout = TimeSpan.FromSeconds(5) };
        configure?.Invoke(options);
        var store = new EtcdSubnetStore(etcd ?? Etcd, ownsConnection: false, options, Log, Time);
        _stores.Add(store);
        return store;
    }

    public Task PutConfigAsync(string json = """{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}""") => PutAsync(Prefix + "/config", json);

    /// <summary>An unconditional put without a lease, as <c>etcdctl put</c> does.</summary>
    public async Task<long> PutAsync(string key, string value, long lease = 0)
    {
        var txn = new TxnRequest();
        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = ByteString.CopyFromUtf8(key), Value = ByteString.CopyFromUtf8(value), Lease = lease } });
        return (await Etcd.TxnAsync(txn, Timeout())).Header.Revision;
    }

    public async Task<long> DeleteAsync(string key)
    {
        var txn = new TxnRequest();
        txn.Success.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = ByteString.CopyFromUtf8(key) } });
        return (await Etcd.TxnAsync(txn, Timeout())).Header.Revision;
    }

    public async Task<Mvccpb.KeyValue?> GetAsync(string key) =>
        (await Etcd.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8(key) }, Timeout())).Kvs.SingleOrDefault();

    public async Task<string?> GetValueAsync(string key) => (await GetAsync(key))?.Value.ToStringUtf8();

    public async Task<List<string>> ListKeysAsync() =>
        [.. (await Etcd.RangeAsync(EtcdKeyLayout.PrefixRange(Prefix + "/subnets/"), Timeout())).Kvs.Select(kv => kv.Key.ToStringUtf8())];

    public async Task<long> TimeToLiveAsync(long lease) =>
        (await Etcd.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = lease }, Timeout())).TTL;

    /// <summary>Waits (polling, bounded) until <paramref name="condition"/> holds.</summary>
    public static Task WaitUntilAsync(Func<bool> condition, string what) => Wait.UntilAsync(condition, what);

    public static async Task<LeaseWatchResult> NextAsync(IAsyncEnumerator<LeaseWatchResult> watch)
    {
        Assert.True(await watch.MoveNextAsync(), "the watch ended");
        return watch.Current;
    }

    public void Dispose()
    {
        _stores.ForEach(s => s.Dispose());
        Etcd.Dispose();
    }
}

/// <summary>
/// An <see cref="IEtcdKeyValue"/> in front of another that runs <see cref="BeforeTxn"/> before each transaction, so
/// a test can slip a competing writer in between a store's read and its compare-and-swap.
/// </summary>
internal sealed class InterceptingEtcd(IEtcdKeyValue inner) : IEtcdKeyValue
{
    public Func<TxnRequest, Task>? BeforeTxn { get; set; }

    public string EndpointsText => inner.EndpointsText;

    public bool IsTls => inner.IsTls;

    public Task<RangeResponse> RangeAsync(RangeRequest request, CancellationToken cancellationToken) => inner.RangeAsync(request, cancellationToken);

    public async Task<TxnResponse> TxnAsync(TxnRequest request, CancellationToken cancellationToken)
    {
        if (BeforeTxn is { } before)
        {
            await before(request);
        }

        return await inner.TxnAsync(request, cancellationToken);
    }

    public Task<LeaseGrantResponse> LeaseGrantAsync(LeaseGrantRequest request, CancellationToken cancellationToken) => inner.LeaseGrantAsync(request, cancellationToken);

    public Task<LeaseRevokeResponse> LeaseRevokeAsync(LeaseRevokeRequest request, CancellationToken cancellationToken) => inner.LeaseRevokeAsync(request, cancellationToken);

    public Task<LeaseTimeToLiveResponse> LeaseTimeToLiveAsync(LeaseTimeToLiveRequest request, CancellationToken cancellationToken) =>
        inner.LeaseTimeToLiveAsync(request, cancellationToken);

    public Task<LeaseKeepAliveResponse> LeaseKeepAliveOnceAsync(long leaseId, CancellationToken cancellationToken) => inner.LeaseKeepAliveOnceAsync(leaseId, cancellationToken);

    public IAsyncEnumerable<WatchResponse> WatchAsync(WatchCreateRequest request, CancellationToken cancellationToken) => inner.WatchAsync(request, cancellationToken);

    public void Dispose()
    {
    }
}
