using System.Net;
using Flannel.Subnets;

namespace Flannel.Store.Etcd.Tests.Store;

/// <summary>
/// Start-up lists the leases once (issue 13): the node hints' list is what the acquisition decides from, and the lease
/// watch starts from the acquisition's list, resuming after its revision so that nothing written since is lost.
/// </summary>
public sealed class StartupListUnitTests
{
    [Fact]
    public async Task Hints_acquisition_and_the_watch_snapshot_share_one_list_and_later_writes_arrive_as_events()
    {
        using var etcd = new FakeEtcd();
        await etcd.PutConfigAsync();
        await etcd.PutAsync(FakeEtcd.Key("10.5.1.0-24"), Leases.Json("198.18.30.1"));
        await etcd.PutAsync(FakeEtcd.Key("10.5.2.0-24"), Leases.Json("198.18.30.2"));
        EtcdSubnetStore store = etcd.Store();

        await store.GetNetworkConfigAsync(FakeEtcd.Timeout());
        await store.GetNodeHintsAsync(IPAddress.Parse("198.18.30.9"), FakeEtcd.Timeout());
        Lease own = await store.AcquireLeaseAsync(Leases.Request("198.18.30.9"), FakeEtcd.Timeout());
        await etcd.PutAsync(FakeEtcd.Key("10.5.3.0-24"), Leases.Json("198.18.30.3")); // after the list, before the watch

        await using IAsyncEnumerator<LeaseWatchResult> watch = store.WatchLeasesAsync(FakeEtcd.Timeout()).GetAsyncEnumerator(FakeEtcd.Timeout());
        LeaseWatchResult snapshot = await FakeEtcd.NextAsync(watch);

        Assert.Equal(1, etcd.Etcd.RangeListings);
        Assert.Equal(["10.5.1.0-24", "10.5.2.0-24"], snapshot.Snapshot!.Select(l => l.Key));

        // Everything since the list: our own creation (the agent's lease set drops it) and the newcomer.
        var events = new List<LeaseEvent>();
        while (events.Count < 2)
        {
            events.AddRange((await FakeEtcd.NextAsync(watch)).Events);
        }

        Assert.Equal([(LeaseEventType.Added, own.Key), (LeaseEventType.Added, "10.5.3.0-24")], events.Select(e => (e.Type, e.Lease.Key)));
        Assert.Equal(1, etcd.Etcd.RangeListings);
    }

    [Fact]
    public async Task A_decision_from_the_stale_hints_list_loses_its_race_and_the_watch_starts_from_the_fresh_list()
    {
        using var etcd = new FakeEtcd();
        await etcd.PutConfigAsync();
        EtcdSubnetStore store = etcd.Store();
        await store.GetNodeHintsAsync(IPAddress.Parse("198.18.31.9"), FakeEtcd.Timeout());

        // Another node takes the subnet this one had before, after the hints' list was read.
        await etcd.PutAsync(FakeEtcd.Key("10.5.7.0-24"), Leases.Json("198.18.31.2"));
        Lease own = await store.AcquireLeaseAsync(Leases.Request("198.18.31.9", previous: "10.5.7.0/24"), FakeEtcd.Timeout());

        Assert.NotEqual(IPNetwork.Parse("10.5.7.0/24"), own.Subnet);
        Assert.Equal(2, etcd.Etcd.RangeListings); // the stale decision, then a fresh one
        await using IAsyncEnumerator<LeaseWatchResult> watch = store.WatchLeasesAsync(FakeEtcd.Timeout()).GetAsyncEnumerator(FakeEtcd.Timeout());
        Assert.Equal(["10.5.7.0-24"], (await FakeEtcd.NextAsync(watch)).Snapshot!.Select(l => l.Key));
        Assert.Equal(2, etcd.Etcd.RangeListings);
    }

    [Fact]
    public async Task A_second_watch_and_a_later_acquisition_list_afresh()
    {
        using var etcd = new FakeEtcd();
        await etcd.PutConfigAsync();
        EtcdSubnetStore store = etcd.Store();
        Lease own = await store.AcquireLeaseAsync(Leases.Request("198.18.32.9"), FakeEtcd.Timeout());
        await using (IAsyncEnumerator<LeaseWatchResult> first = store.WatchLeasesAsync(FakeEtcd.Timeout()).GetAsyncEnumerator(FakeEtcd.Timeout()))
        {
            await FakeEtcd.NextAsync(first);
        }

        Assert.Equal(1, etcd.Etcd.RangeListings);
        await etcd.PutAsync(FakeEtcd.Key("10.5.4.0-24"), Leases.Json("198.18.32.4"));

        // Re-acquiring once the watch runs (a deleted lease) lists, and keeps no list around for a watch.
        await etcd.DeleteAsync(FakeEtcd.Key(own.Key));
        await store.AcquireLeaseAsync(Leases.Request("198.18.32.9"), FakeEtcd.Timeout());
        await using IAsyncEnumerator<LeaseWatchResult> second = store.WatchLeasesAsync(FakeEtcd.Timeout()).GetAsyncEnumerator(FakeEtcd.Timeout());
        IReadOnlyList<Lease> snapshot = (await FakeEtcd.NextAsync(second)).Snapshot!;

        Assert.Equal(3, etcd.Etcd.RangeListings);
        Assert.Contains(snapshot, l => l.Key == "10.5.4.0-24");
    }
}
