using Flannel.Subnets;

namespace Flannel.Store.Etcd.Tests;

public sealed class LeaseLifecycleTests(EtcdFixture fixture) : IClassFixture<EtcdFixture>
{
    [Fact]
    public async Task An_expired_lease_is_seen_as_removed_with_its_full_attributes()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        await EtcdTest.PutConfigAsync(server, prefix);
        using var watcher = EtcdTest.Store(server, prefix);
        using var owner = EtcdTest.Store(server, prefix, o => o.LeaseTtl = TimeSpan.FromSeconds(2));
        CancellationToken ct = EtcdTest.Timeout();
        await using var watch = watcher.WatchLeasesAsync(ct).GetAsyncEnumerator(ct);
        Assert.Empty((await EtcdTest.NextAsync(watch)).Snapshot!);

        // Acquired but never kept alive: etcd drops the key when the 2 s TTL runs out.
        Lease lease = await owner.AcquireLeaseAsync(EtcdTest.Request("198.18.10.1"), ct);
        LeaseWatchResult added = await EtcdTest.NextAsync(watch);
        LeaseWatchResult removed = await EtcdTest.NextAsync(watch);

        Assert.Equal(LeaseEventType.Added, Assert.Single(added.Events).Type);
        LeaseEvent gone = Assert.Single(removed.Events);
        Assert.Equal(LeaseEventType.Removed, gone.Type);
        Assert.Equal(lease.Subnet, gone.Lease.Subnet);
        Assert.Equal(EtcdTest.Vxlan("198.18.10.1"), gone.Lease.Attributes);
    }

    [Fact]
    public async Task KeepLease_renews_one_etcd_lease_with_keepalive()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        await EtcdTest.PutConfigAsync(server, prefix);
        using var store = EtcdTest.Store(server, prefix, o => o.LeaseTtl = TimeSpan.FromSeconds(3));
        CancellationToken ct = EtcdTest.Timeout();
        Lease lease = await store.AcquireLeaseAsync(EtcdTest.Request("198.18.11.1"), ct);
        string key = prefix + "/subnets/" + lease.Key;
        long etcdLease = await EtcdTest.GetEtcdLeaseAsync(server, key);

        // Three renewals span more than two TTLs; the key survives, still on the same etcd lease and revision.
        var renewals = new List<Lease>();
        await foreach (Lease renewed in store.KeepLeaseAsync(lease, ct))
        {
            renewals.Add(renewed);
            if (renewals.Count == 3)
            {
                break;
            }
        }

        Assert.All(renewals, r => Assert.Equal(lease.Subnet, r.Subnet));
        Assert.All(renewals, r => Assert.Equal(lease.Revision, r.Revision));
        Assert.True(renewals[^1].Expiration > lease.Expiration);
        Assert.Equal(etcdLease, await EtcdTest.GetEtcdLeaseAsync(server, key));
        Assert.InRange(await EtcdTest.GetTtlAsync(server, etcdLease), 0, 3); // -1 would mean expired
        Assert.True(store.Statistics.Renewals >= 3);

        // An explicit renewal does the same.
        Lease explicitRenewal = await store.RenewLeaseAsync(lease, ct);
        Assert.Equal(lease.Revision, explicitRenewal.Revision);
    }

    [Fact]
    public async Task A_deleted_own_lease_is_reacquired_with_the_same_subnet()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        await EtcdTest.PutConfigAsync(server, prefix);
        var log = new ListLogger();
        using var store = EtcdTest.Store(server, prefix, logger: new ListLogger<EtcdSubnetStore>(log));
        CancellationToken ct = EtcdTest.Timeout();
        Lease lease = await store.AcquireLeaseAsync(EtcdTest.Request("198.18.12.1"), ct);
        string key = prefix + "/subnets/" + lease.Key;

        await using var keep = store.KeepLeaseAsync(lease, ct).GetAsyncEnumerator(ct);
        Task<bool> next = keep.MoveNextAsync().AsTask();
        await Task.Delay(200, ct); // let the own-key watch start
        (await server.EtcdctlAsync("del", key)).EnsureSuccess();

        Assert.True(await next);
        Assert.Equal(lease.Subnet, keep.Current.Subnet);
        Assert.True(keep.Current.Revision > lease.Revision);
        Assert.Equal(LeaseJson.Serialize(lease.Attributes), await EtcdTest.GetValueAsync(server, key));
        Assert.True(log.Contains("WAS LOST (Deleted)"));
        Assert.Equal(1, store.Statistics.Reacquisitions);
    }

    [Fact]
    public async Task A_revoked_etcd_lease_is_replaced_and_the_subnet_kept()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        await EtcdTest.PutConfigAsync(server, prefix);
        using var store = EtcdTest.Store(server, prefix);
        CancellationToken ct = EtcdTest.Timeout();
        Lease lease = await store.AcquireLeaseAsync(EtcdTest.Request("198.18.14.1"), ct);
        string key = prefix + "/subnets/" + lease.Key;
        long etcdLease = await EtcdTest.GetEtcdLeaseAsync(server, key);

        await using var keep = store.KeepLeaseAsync(lease, ct).GetAsyncEnumerator(ct);
        Task<bool> next = keep.MoveNextAsync().AsTask();
        (await server.EtcdctlAsync("lease", "revoke", etcdLease.ToString("x"))).EnsureSuccess();

        // The key went with its etcd lease; the store grants a new etcd lease and takes the same subnet again.
        Assert.True(await next);
        Assert.Equal(lease.Subnet, keep.Current.Subnet);
        long replacement = await EtcdTest.GetEtcdLeaseAsync(server, key);
        Assert.NotEqual(0, replacement);
        Assert.NotEqual(etcdLease, replacement);
        Assert.InRange(await EtcdTest.GetTtlAsync(server, replacement), 86_000, 86_400);
    }

    [Fact]
    public async Task A_lease_taken_over_by_another_node_is_never_overwritten_and_a_new_subnet_is_leased()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        await EtcdTest.PutConfigAsync(server, prefix);
        using var store = EtcdTest.Store(server, prefix);
        CancellationToken ct = EtcdTest.Timeout();
        Lease lease = await store.AcquireLeaseAsync(EtcdTest.Request("198.18.13.1"), ct);
        string key = prefix + "/subnets/" + lease.Key;
        string intruder = LeaseJson.Serialize(EtcdTest.Vxlan("198.18.13.2"));

        await using var keep = store.KeepLeaseAsync(lease, ct).GetAsyncEnumerator(ct);
        Task<bool> next = keep.MoveNextAsync().AsTask();
        await Task.Delay(200, ct);
        await EtcdTest.PutAsync(server, key, intruder);

        Assert.True(await next);
        Assert.NotEqual(lease.Subnet, keep.Current.Subnet);
        Assert.Equal(intruder, await EtcdTest.GetValueAsync(server, key));
        await Assert.ThrowsAsync<EtcdLeaseLostException>(() => store.RenewLeaseAsync(lease, ct).AsTask());
    }
}
