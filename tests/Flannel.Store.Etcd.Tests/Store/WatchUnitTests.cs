using System.Net;
using Flannel.Subnets;

namespace Flannel.Store.Etcd.Tests.Store;

/// <summary>The lease watch over the in-memory etcd: events, dedup, compaction, broken streams, foreign garbage.</summary>
public sealed class WatchUnitTests
{
    [Fact]
    public async Task The_watch_delivers_every_revision_and_removes_with_cached_attributes()
    {
        using var etcd = new FakeEtcd();
        await using IAsyncEnumerator<LeaseWatchResult> watch = etcd.Store().WatchLeasesAsync(FakeEtcd.Timeout()).GetAsyncEnumerator(FakeEtcd.Timeout());
        Assert.Empty((await FakeEtcd.NextAsync(watch)).Snapshot!);

        string a = FakeEtcd.Key("10.5.1.0-24");
        string b = FakeEtcd.Key("10.5.2.0-24");
        await etcd.PutAsync(a, Leases.Json("198.18.20.1"));
        await etcd.PutAsync(a, Leases.Json("198.18.20.1")); // a Go flanneld renewal: same value, new revision
        await etcd.PutAsync(b, Leases.Json("198.18.20.2"));
        await etcd.PutAsync(a, Leases.Json("198.18.20.1", "aa:aa:aa:aa:aa:aa")); // new MAC
        await etcd.DeleteAsync(b);

        var events = new List<LeaseEvent>();
        while (events.Count < 5)
        {
            events.AddRange((await FakeEtcd.NextAsync(watch)).Events);
        }

        Assert.Equal(
            [
                (LeaseEventType.Added, "10.5.1.0-24", "c6:d2:32:6f:8f:44"),
                (LeaseEventType.Added, "10.5.1.0-24", "c6:d2:32:6f:8f:44"), // the store dedupes by revision only
                (LeaseEventType.Added, "10.5.2.0-24", "c6:d2:32:6f:8f:44"),
                (LeaseEventType.Added, "10.5.1.0-24", "aa:aa:aa:aa:aa:aa"),
                (LeaseEventType.Removed, "10.5.2.0-24", "c6:d2:32:6f:8f:44"),
            ],
            events.Select(e => (e.Type, e.Lease.Key, e.Lease.Attributes.BackendData![^19..^2])).ToList());
        Assert.Equal(IPAddress.Parse("198.18.20.2"), events[4].Lease.Attributes.PublicIP);
        Assert.True(events[1].Lease.Revision > events[0].Lease.Revision);
    }

    [Fact]
    public async Task A_lease_under_a_key_in_another_form_than_flannels_is_its_own_entry_until_that_key_is_deleted()
    {
        using var etcd = new FakeEtcd();
        await using IAsyncEnumerator<LeaseWatchResult> watch = etcd.Store().WatchLeasesAsync(FakeEtcd.Timeout()).GetAsyncEnumerator(FakeEtcd.Timeout());
        Assert.Empty((await FakeEtcd.NextAsync(watch)).Snapshot!);

        // flannel's key pattern reads the prefix length as a number, so "-024" names the same subnet as "-24"; the
        // watch caches per etcd key, and the two keys are two entries.
        string canonical = FakeEtcd.Key("10.5.7.0-24");
        string other = FakeEtcd.Key("10.5.7.0-024");
        await etcd.PutAsync(canonical, Leases.Json("198.18.20.7"));
        await etcd.PutAsync(other, Leases.Json("198.18.20.8"));
        await etcd.DeleteAsync(other);
        await etcd.DeleteAsync(canonical);

        var events = new List<LeaseEvent>();
        while (events.Count < 4)
        {
            events.AddRange((await FakeEtcd.NextAsync(watch)).Events);
        }

        Assert.Equal(
            [
                (LeaseEventType.Added, "198.18.20.7"),
                (LeaseEventType.Added, "198.18.20.8"),
                (LeaseEventType.Removed, "198.18.20.8"),
                (LeaseEventType.Removed, "198.18.20.7"),
            ],
            events.Select(e => (e.Type, e.Lease.Attributes.PublicIP.ToString())).ToList());
        Assert.All(events, e => Assert.Equal("10.5.7.0-24", e.Lease.Key));
    }

    [Fact]
    public async Task Leases_carry_their_create_revision_so_the_first_of_two_overlapping_leases_can_win()
    {
        using var etcd = new FakeEtcd();
        string a = FakeEtcd.Key("10.5.1.0-24");
        string b = FakeEtcd.Key("10.5.1.0-25");
        await etcd.PutAsync(a, Leases.Json("198.18.20.1"));
        await etcd.PutAsync(b, Leases.Json("198.18.20.2"));
        await etcd.PutAsync(a, Leases.Json("198.18.20.1", "aa:aa:aa:aa:aa:aa")); // rewritten later: still created first

        await using IAsyncEnumerator<LeaseWatchResult> watch = etcd.Store().WatchLeasesAsync(FakeEtcd.Timeout()).GetAsyncEnumerator(FakeEtcd.Timeout());
        IReadOnlyList<Lease> snapshot = (await FakeEtcd.NextAsync(watch)).Snapshot!;

        Lease first = snapshot.Single(l => l.Key == "10.5.1.0-24");
        Lease second = snapshot.Single(l => l.Key == "10.5.1.0-25");
        Assert.True(first.CreateRevision > 0);
        Assert.True(first.CreateRevision < second.CreateRevision);
        Assert.True(first.Revision > second.Revision);
    }

    [Fact]
    public async Task Compaction_while_the_watch_is_behind_relists_without_losing_or_duplicating()
    {
        using var etcd = new FakeEtcd();
        string a = FakeEtcd.Key("10.5.1.0-24");
        string b = FakeEtcd.Key("10.5.2.0-24");
        string c = FakeEtcd.Key("10.5.3.0-24");
        await etcd.PutAsync(a, Leases.Json("198.18.21.1"));
        await etcd.PutAsync(b, Leases.Json("198.18.21.2"));
        await using IAsyncEnumerator<LeaseWatchResult> watch = etcd.Store().WatchLeasesAsync(FakeEtcd.Timeout()).GetAsyncEnumerator(FakeEtcd.Timeout());
        LeaseWatchResult first = await FakeEtcd.NextAsync(watch);
        Assert.Equal(["10.5.1.0-24", "10.5.2.0-24"], first.Snapshot!.Select(l => l.Key));

        // The watch has listed but not yet resumed: changes happen and their history is compacted away.
        await etcd.DeleteAsync(a);
        await etcd.PutAsync(c, Leases.Json("198.18.21.3"));
        long last = await etcd.PutAsync(b, Leases.Json("198.18.21.2", "bb:bb:bb:bb:bb:bb"));
        etcd.Etcd.Compact(last);

        LeaseWatchResult second = await FakeEtcd.NextAsync(watch);
        Assert.True(second.IsSnapshot);
        Assert.Equal(["10.5.2.0-24", "10.5.3.0-24"], second.Snapshot!.Select(l => l.Key));
        Assert.Equal("""{"VNI":1,"VtepMAC":"bb:bb:bb:bb:bb:bb"}""", second.Snapshot![0].Attributes.BackendData);
        Assert.True(etcd.Log.Contains("compacted"));

        // After the re-list the watch goes on from the new revision: the next change arrives exactly once.
        await etcd.PutAsync(a, Leases.Json("198.18.21.4"));
        LeaseEvent only = Assert.Single((await FakeEtcd.NextAsync(watch)).Events);
        Assert.Equal((LeaseEventType.Added, "10.5.1.0-24"), (only.Type, only.Lease.Key));
    }

    [Fact]
    public async Task A_broken_stream_resumes_after_the_last_event_without_losing_or_repeating_one()
    {
        using var etcd = new FakeEtcd();
        EtcdSubnetStore store = etcd.Store();
        await using IAsyncEnumerator<LeaseWatchResult> watch = store.WatchLeasesAsync(FakeEtcd.Timeout()).GetAsyncEnumerator(FakeEtcd.Timeout());
        Assert.Empty((await FakeEtcd.NextAsync(watch)).Snapshot!);
        await etcd.PutAsync(FakeEtcd.Key("10.5.1.0-24"), Leases.Json("198.18.23.1"));
        Assert.Equal("10.5.1.0-24", Assert.Single((await FakeEtcd.NextAsync(watch)).Events).Lease.Key);

        // The connection drops, and around the reconnection a lease is added: it arrives once, from the history
        // after the last event seen, with no new snapshot.
        Task<bool> next = watch.MoveNextAsync().AsTask();
        await FakeEtcd.WaitUntilAsync(() => etcd.Etcd.OpenWatches == 1, "the watch is open");
        etcd.Etcd.BreakWatches();
        await etcd.PutAsync(FakeEtcd.Key("10.5.2.0-24"), Leases.Json("198.18.23.2"));

        Assert.True(await next);
        Assert.Equal((LeaseEventType.Added, "10.5.2.0-24"), (Assert.Single(watch.Current.Events).Type, watch.Current.Events[0].Lease.Key));
        Assert.False(watch.Current.IsSnapshot);
        Assert.Null(store.NotReadyReason);
        Assert.True(etcd.Log.Contains("interrupted"));
    }

    [Fact]
    public async Task Malformed_keys_and_values_from_a_foreign_writer_are_skipped_and_the_watch_continues()
    {
        using var etcd = new FakeEtcd();
        await etcd.PutAsync(FakeEtcd.Key("not-a-subnet"), "{}");
        EtcdSubnetStore store = etcd.Store();
        await using IAsyncEnumerator<LeaseWatchResult> watch = store.WatchLeasesAsync(FakeEtcd.Timeout()).GetAsyncEnumerator(FakeEtcd.Timeout());
        Assert.Empty((await FakeEtcd.NextAsync(watch)).Snapshot!);
        Assert.True(etcd.Log.Contains(FakeEtcd.Key("not-a-subnet")));

        await etcd.PutAsync(FakeEtcd.Key("10.5.9.0-24"), "{not json");
        await etcd.PutAsync(FakeEtcd.Key("10.5.10.0-24"), """{"PublicIP":"not-an-ip","PublicIPv6":null}""");
        await etcd.PutAsync(FakeEtcd.Key("300.5.1.0-24"), Leases.Json("198.18.22.9"));
        await etcd.PutAsync(FakeEtcd.Key("010.5.1.0-24"), Leases.Json("198.18.22.9"));
        await etcd.PutAsync(FakeEtcd.Key("10.5.11.0-24"), Leases.Json("198.18.22.2"));

        LeaseEvent good = Assert.Single((await FakeEtcd.NextAsync(watch)).Events);
        Assert.Equal("10.5.11.0-24", good.Lease.Key);
        foreach (string bad in new[] { "10.5.9.0-24", "10.5.10.0-24", "300.5.1.0-24", "010.5.1.0-24" })
        {
            Assert.True(etcd.Log.Contains(FakeEtcd.Key(bad)), bad);
        }

        Assert.True(etcd.Log.Contains("not-an-ip"));

        // A lease rewritten with garbage no longer describes a usable peer: it is removed.
        await etcd.PutAsync(FakeEtcd.Key("10.5.11.0-24"), "garbage");
        LeaseEvent removed = Assert.Single((await FakeEtcd.NextAsync(watch)).Events);
        Assert.Equal((LeaseEventType.Removed, "10.5.11.0-24"), (removed.Type, removed.Lease.Key));

        // And acquisition treats the unreadable subnets as taken.
        await etcd.PutConfigAsync("""{"Network":"10.5.0.0/16","SubnetMin":"10.5.9.0","SubnetMax":"10.5.12.0"}""");
        Lease lease = await store.AcquireLeaseAsync(Leases.Request("198.18.22.1"), FakeEtcd.Timeout());
        Assert.Equal(IPNetwork.Parse("10.5.12.0/24"), lease.Subnet);
    }
}
