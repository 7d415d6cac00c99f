using Flannel.Subnets;
using Microsoft.Extensions.Time.Testing;

namespace Flannel.Store.Etcd.Tests.Store;

/// <summary>Renewal, expiry and re-acquisition over the in-memory etcd, on a fake clock where time matters.</summary>
public sealed class LeaseLifecycleUnitTests
{
    [Fact]
    public async Task An_expired_lease_is_seen_as_removed_with_its_full_attributes()
    {
        var time = new FakeTimeProvider();
        using var etcd = new FakeEtcd(time);
        await etcd.PutConfigAsync();
        EtcdSubnetStore watcher = etcd.Store();
        EtcdSubnetStore owner = etcd.Store(o => o.LeaseTtl = TimeSpan.FromSeconds(2));
        await using IAsyncEnumerator<LeaseWatchResult> watch = watcher.WatchLeasesAsync(FakeEtcd.Timeout()).GetAsyncEnumerator(FakeEtcd.Timeout());
        Assert.Empty((await FakeEtcd.NextAsync(watch)).Snapshot!);

        // Acquired but never kept alive: etcd drops the key when the 2 s TTL runs out.
        Lease lease = await owner.AcquireLeaseAsync(Leases.Request("198.18.10.1"), FakeEtcd.Timeout());
        LeaseWatchResult added = await FakeEtcd.NextAsync(watch);
        time.Advance(TimeSpan.FromSeconds(3));
        LeaseWatchResult removed = await FakeEtcd.NextAsync(watch);

        Assert.Equal(LeaseEventType.Added, Assert.Single(added.Events).Type);
        LeaseEvent gone = Assert.Single(removed.Events);
        Assert.Equal((LeaseEventType.Removed, lease.Subnet), (gone.Type, gone.Lease.Subnet));
        Assert.Equal(Leases.Vxlan("198.18.10.1"), gone.Lease.Attributes);
    }

    [Fact]
    public async Task KeepLease_renews_one_etcd_lease_with_keepalive_before_it_expires()
    {
        var time = new FakeTimeProvider();
        using var etcd = new FakeEtcd(time);
        await etcd.PutConfigAsync();
        EtcdSubnetStore store = etcd.Store(o => o.LeaseTtl = TimeSpan.FromSeconds(30));
        Lease lease = await store.AcquireLeaseAsync(Leases.Request("198.18.11.1"), FakeEtcd.Timeout());
        string key = FakeEtcd.Key(lease.Key);
        long etcdLease = (await etcd.GetAsync(key))!.Lease;

        // A margin longer than the TTL renews at a third of it: 10 s after each renewal. Three renewals span 30 s,
        // a whole TTL; the key survives, on the same etcd lease and revision.
        await using IAsyncEnumerator<Lease> keep = store.KeepLeaseAsync(lease, FakeEtcd.Timeout()).GetAsyncEnumerator(FakeEtcd.Timeout());
        var renewals = new List<Lease>();
        for (int i = 0; i < 3; i++)
        {
            Task<bool> next = keep.MoveNextAsync().AsTask();
            await AdvanceUntilAsync(time, next, TimeSpan.FromSeconds(1));
            Assert.True(await next);
            renewals.Add(keep.Current);
        }

        Assert.All(renewals, r => Assert.Equal((lease.Subnet, lease.Revision), (r.Subnet, r.Revision)));
        Assert.True(renewals[^1].Expiration > lease.Expiration);
        Assert.Equal(etcdLease, (await etcd.GetAsync(key))!.Lease);
        Assert.InRange(await etcd.TimeToLiveAsync(etcdLease), 19, 30);
        Assert.Equal(3, store.Statistics.Renewals);
    }

    [Fact]
    public async Task A_deleted_own_lease_is_reacquired_with_the_same_subnet_and_logged_loudly()
    {
        using var etcd = new FakeEtcd();
        await etcd.PutConfigAsync();
        EtcdSubnetStore store = etcd.Store();
        Lease lease = await store.AcquireLeaseAsync(Leases.Request("198.18.12.1"), FakeEtcd.Timeout());
        string key = FakeEtcd.Key(lease.Key);
        await using IAsyncEnumerator<Lease> keep = store.KeepLeaseAsync(lease, FakeEtcd.Timeout()).GetAsyncEnumerator(FakeEtcd.Timeout());
        Task<bool> next = keep.MoveNextAsync().AsTask();
        await FakeEtcd.WaitUntilAsync(() => etcd.Etcd.OpenWatches == 1, "the store watches its own key");

        await etcd.DeleteAsync(key);

        Assert.True(await next);
        Assert.Equal(lease.Subnet, keep.Current.Subnet);
        Assert.True(keep.Current.Revision > lease.Revision);
        Assert.Equal(LeaseJson.Serialize(lease.Attributes), await etcd.GetValueAsync(key));
        Assert.True(etcd.Log.Contains("WAS LOST (Deleted)"));
        Assert.Equal(1, store.Statistics.Reacquisitions);
    }

    [Fact]
    public async Task A_revoked_etcd_lease_is_replaced_and_the_subnet_kept()
    {
        using var etcd = new FakeEtcd();
        await etcd.PutConfigAsync();
        EtcdSubnetStore store = etcd.Store();
        Lease lease = await store.AcquireLeaseAsync(Leases.Request("198.18.14.1"), FakeEtcd.Timeout());
        string key = FakeEtcd.Key(lease.Key);
        long etcdLease = (await etcd.GetAsync(key))!.Lease;
        await using IAsyncEnumerator<Lease> keep = store.KeepLeaseAsync(lease, FakeEtcd.Timeout()).GetAsyncEnumerator(FakeEtcd.Timeout());
        Task<bool> next = keep.MoveNextAsync().AsTask();
        await FakeEtcd.WaitUntilAsync(() => etcd.Etcd.OpenWatches == 1, "the store watches its own key");

        await etcd.Etcd.LeaseRevokeAsync(new Etcdserverpb.LeaseRevokeRequest { ID = etcdLease }, FakeEtcd.Timeout());

        // The key went with its etcd lease; the store grants a new etcd lease and takes the same subnet again.
        Assert.True(await next);
        Assert.Equal(lease.Subnet, keep.Current.Subnet);
        long replacement = (await etcd.GetAsync(key))!.Lease;
        Assert.NotEqual(0, replacement);
        Assert.NotEqual(etcdLease, replacement);
        Assert.InRange(await etcd.TimeToLiveAsync(replacement), 86_000, 86_400);
    }

    [Fact]
    public async Task A_lease_taken_over_by_another_node_is_never_overwritten_and_a_new_subnet_is_leased()
    {
        using var etcd = new FakeEtcd();
        await etcd.PutConfigAsync();
        EtcdSubnetStore store = etcd.Store();
        Lease lease = await store.AcquireLeaseAsync(Leases.Request("198.18.13.1"), FakeEtcd.Timeout());
        string key = FakeEtcd.Key(lease.Key);
        await using IAsyncEnumerator<Lease> keep = store.KeepLeaseAsync(lease, FakeEtcd.Timeout()).GetAsyncEnumerator(FakeEtcd.Timeout());
        Task<bool> next = keep.MoveNextAsync().AsTask();
        await FakeEtcd.WaitUntilAsync(() => etcd.Etcd.OpenWatches == 1, "the store watches its own key");

        await etcd.PutAsync(key, Leases.Json("198.18.13.2"));

        Assert.True(await next);
        Assert.NotEqual(lease.Subnet, keep.Current.Subnet);
        Assert.Equal(Leases.Json("198.18.13.2"), await etcd.GetValueAsync(key));
        Assert.True(etcd.Log.Contains("WAS LOST (Overwritten)"));
        await Assert.ThrowsAsync<EtcdLeaseLostException>(() => store.RenewLeaseAsync(lease, FakeEtcd.Timeout()).AsTask());
    }

    /// <summary>Moves the fake clock in steps until <paramref name="task"/> completes (bounded by the test timeout).</summary>
    private static async Task AdvanceUntilAsync(FakeTimeProvider time, Task task, TimeSpan step)
    {
        CancellationToken timeout = FakeEtcd.Timeout();
        while (!task.IsCompleted)
        {
            Assert.False(timeout.IsCancellationRequested, "timed out advancing the clock");
            time.Advance(step);

            // Let the store's continuations run on the thread pool before the next step.
            await Task.WhenAny(task, Task.Delay(20, CancellationToken.None));
        }
    }
}
