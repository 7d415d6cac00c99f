using System.Net;
using Flannel.Subnets;

namespace Flannel.Store.Etcd.Tests;

public sealed class WatchTests(EtcdFixture fixture) : IClassFixture<EtcdFixture>
{
    [Fact]
    public async Task Watch_delivers_adds_and_removes_and_skips_unchanged_rewrites()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        using var store = EtcdTest.Store(server, prefix);
        CancellationToken ct = EtcdTest.Timeout();
        await using var watch = store.WatchLeasesAsync(ct).GetAsyncEnumerator(ct);
        Assert.Empty((await EtcdTest.NextAsync(watch)).Snapshot!);

        string a = prefix + "/subnets/10.5.1.0-24";
        string b = prefix + "/subnets/10.5.2.0-24";
        await EtcdTest.PutAsync(server, a, LeaseJson.Serialize(EtcdTest.Vxlan("198.18.20.1")));
        await EtcdTest.PutAsync(server, a, LeaseJson.Serialize(EtcdTest.Vxlan("198.18.20.1"))); // a Go flanneld renewal: same value
        await EtcdTest.PutAsync(server, b, LeaseJson.Serialize(EtcdTest.Vxlan("198.18.20.2")));
        await EtcdTest.PutAsync(server, a, LeaseJson.Serialize(EtcdTest.Vxlan("198.18.20.1", "aa:aa:aa:aa:aa:aa"))); // new MAC
        (await server.EtcdctlAsync("del", b)).EnsureSuccess();

        var events = new List<LeaseEvent>();
        while (events.Count < 4)
        {
            events.AddRange((await EtcdTest.NextAsync(watch)).Events);
        }

        Assert.Equal(
            [
                (LeaseEventType.Added, "10.5.1.0-24", "c6:d2:32:6f:8f:44"),
                (LeaseEventType.Added, "10.5.2.0-24", "c6:d2:32:6f:8f:44"),
                (LeaseEventType.Added, "10.5.1.0-24", "aa:aa:aa:aa:aa:aa"),
                (LeaseEventType.Removed, "10.5.2.0-24", "c6:d2:32:6f:8f:44"),
            ],
            events.Select(e => (e.Type, e.Lease.Key, e.Lease.Attributes.BackendData![^19..^2])).ToList());
        Assert.Equal(IPAddress.Parse("198.18.20.2"), events[3].Lease.Attributes.PublicIP);
    }

    [Fact]
    public async Task Compaction_while_the_watch_is_behind_relists_without_losing_or_duplicating()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        string a = prefix + "/subnets/10.5.1.0-24";
        string b = prefix + "/subnets/10.5.2.0-24";
        string c = prefix + "/subnets/10.5.3.0-24";
        await EtcdTest.PutAsync(server, a, LeaseJson.Serialize(EtcdTest.Vxlan("198.18.21.1")));
        await EtcdTest.PutAsync(server, b, LeaseJson.Serialize(EtcdTest.Vxlan("198.18.21.2")));
        var log = new ListLogger();
        using var store = EtcdTest.Store(server, prefix, logger: new ListLogger<EtcdSubnetStore>(log));
        CancellationToken ct = EtcdTest.Timeout();
        await using var watch = store.WatchLeasesAsync(ct).GetAsyncEnumerator(ct);
        LeaseWatchResult first = await EtcdTest.NextAsync(watch);
        Assert.Equal(["10.5.1.0-24", "10.5.2.0-24"], first.Snapshot!.Select(l => l.Key));

        // The watch has listed but not yet resumed: changes happen and their history is compacted away.
        (await server.EtcdctlAsync("del", a)).EnsureSuccess();
        await EtcdTest.PutAsync(server, c, LeaseJson.Serialize(EtcdTest.Vxlan("198.18.21.3")));
        await EtcdTest.PutAsync(server, b, LeaseJson.Serialize(EtcdTest.Vxlan("198.18.21.2", "bb:bb:bb:bb:bb:bb")));
        using var status = System.Text.Json.JsonDocument.Parse((await server.EtcdctlAsync("get", c, "-w", "json")).EnsureSuccess().StandardOutput);
        string revision = status.RootElement.GetProperty("header").GetProperty("revision").GetInt64().ToString();
        (await server.EtcdctlAsync("compact", revision, "--physical")).EnsureSuccess();

        LeaseWatchResult second = await EtcdTest.NextAsync(watch);
        Assert.True(second.IsSnapshot);
        Assert.Equal(["10.5.2.0-24", "10.5.3.0-24"], second.Snapshot!.Select(l => l.Key));
        Assert.Equal("""{"VNI":1,"VtepMAC":"bb:bb:bb:bb:bb:bb"}""", second.Snapshot![0].Attributes.BackendData);
        Assert.True(log.Contains("compacted"));

        // After the re-list the watch goes on from the new revision: the next change arrives exactly once.
        await EtcdTest.PutAsync(server, a, LeaseJson.Serialize(EtcdTest.Vxlan("198.18.21.4")));
        LeaseWatchResult third = await EtcdTest.NextAsync(watch);
        LeaseEvent only = Assert.Single(third.Events);
        Assert.Equal((LeaseEventType.Added, "10.5.1.0-24"), (only.Type, only.Lease.Key));
    }

    [Fact]
    public async Task Malformed_keys_and_values_from_a_foreign_writer_are_skipped_and_the_watch_continues()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        await EtcdTest.PutAsync(server, prefix + "/subnets/not-a-subnet", "{}");
        var log = new ListLogger();
        using var store = EtcdTest.Store(server, prefix, logger: new ListLogger<EtcdSubnetStore>(log));
        CancellationToken ct = EtcdTest.Timeout();
        await using var watch = store.WatchLeasesAsync(ct).GetAsyncEnumerator(ct);
        Assert.Empty((await EtcdTest.NextAsync(watch)).Snapshot!);
        Assert.True(log.Contains(prefix + "/subnets/not-a-subnet"));

        await EtcdTest.PutAsync(server, prefix + "/subnets/10.5.9.0-24", "{not json");
        await EtcdTest.PutAsync(server, prefix + "/subnets/10.5.10.0-24", """{"PublicIP":"not-an-ip","PublicIPv6":null}""");
        await EtcdTest.PutAsync(server, prefix + "/subnets/300.5.1.0-24", EtcdTest.FlannelExampleValue);
        await EtcdTest.PutAsync(server, prefix + "/subnets/10.5.11.0-24", EtcdTest.FlannelExampleValue);

        LeaseEvent good = Assert.Single((await EtcdTest.NextAsync(watch)).Events);
        Assert.Equal("10.5.11.0-24", good.Lease.Key);
        Assert.True(log.Contains(prefix + "/subnets/10.5.9.0-24"));
        Assert.True(log.Contains(prefix + "/subnets/10.5.10.0-24"));
        Assert.True(log.Contains("not-an-ip"));
        Assert.True(log.Contains(prefix + "/subnets/300.5.1.0-24"));

        // A lease rewritten with garbage no longer describes a usable peer: it is removed.
        await EtcdTest.PutAsync(server, prefix + "/subnets/10.5.11.0-24", "garbage");
        LeaseEvent removed = Assert.Single((await EtcdTest.NextAsync(watch)).Events);
        Assert.Equal((LeaseEventType.Removed, "10.5.11.0-24"), (removed.Type, removed.Lease.Key));

        // And acquisition treats the unreadable subnets as taken.
        await EtcdTest.PutConfigAsync(server, prefix, """{"Network":"10.5.0.0/16","SubnetMin":"10.5.9.0","SubnetMax":"10.5.12.0"}""");
        Lease lease = await store.AcquireLeaseAsync(EtcdTest.Request("198.18.22.1"), ct);
        Assert.Equal(IPNetwork.Parse("10.5.12.0/24"), lease.Subnet);
    }
}

/// <summary>Stops and restarts etcd, so it has an etcd of its own.</summary>
public sealed class EtcdRestartTests(EtcdFixture fixture) : IClassFixture<EtcdFixture>
{
    [Fact]
    public async Task Watch_and_renewal_resume_after_etcd_restarts_and_the_lease_is_still_held()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        await EtcdTest.PutConfigAsync(server, prefix);
        var log = new ListLogger();
        using var owner = EtcdTest.Store(server, prefix, o => o.LeaseTtl = TimeSpan.FromSeconds(5), new ListLogger<EtcdSubnetStore>(log));
        using var watcher = EtcdTest.Store(server, prefix, logger: new ListLogger<EtcdSubnetStore>(log));
        CancellationToken ct = EtcdTest.Timeout(90);
        Lease lease = await owner.AcquireLeaseAsync(EtcdTest.Request("198.18.30.1"), ct);
        string key = prefix + "/subnets/" + lease.Key;

        await using var watch = watcher.WatchLeasesAsync(ct).GetAsyncEnumerator(ct);
        Assert.Single((await EtcdTest.NextAsync(watch)).Snapshot!);
        Task<bool> nextWatch = watch.MoveNextAsync().AsTask();
        await using var keep = owner.KeepLeaseAsync(lease, ct).GetAsyncEnumerator(ct);
        Assert.True(await keep.MoveNextAsync(), log.Dump()); // one renewal before the outage

        Assert.Null(watcher.NotReadyReason);
        await server.StopAsync();
        // The store hides the outage from its stream by reconnecting, but reports it for readiness.
        for (int i = 0; i < 100 && watcher.NotReadyReason is null; i++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(100), ct);
        }

        Assert.Contains("etcd lease watch", watcher.NotReadyReason ?? "(none)", StringComparison.Ordinal);
        await server.StartAgainAsync(ct);

        // The watch resumes: a change made after the restart arrives.
        await EtcdTest.PutAsync(server, prefix + "/subnets/10.5.200.0-24", LeaseJson.Serialize(EtcdTest.Vxlan("198.18.30.2")));
        Assert.True(await nextWatch, log.Dump());
        Assert.Equal("10.5.200.0-24", Assert.Single(watch.Current.Events).Lease.Key);
        Assert.Null(watcher.NotReadyReason);

        // Renewals resume: three KeepAlives made after the restart (their expiration lies beyond restart + TTL),
        // spanning more than a TTL, and the lease is still ours, unchanged.
        DateTimeOffset restarted = DateTimeOffset.UtcNow;
        int afterRestart = 0;
        while (afterRestart < 3)
        {
            Assert.True(await keep.MoveNextAsync(), log.Dump());
            Assert.Equal(lease.Subnet, keep.Current.Subnet);
            Assert.Equal(lease.Revision, keep.Current.Revision);
            if (keep.Current.Expiration > restarted + TimeSpan.FromSeconds(5))
            {
                afterRestart++;
            }
        }

        Assert.Equal(LeaseJson.Serialize(lease.Attributes), await EtcdTest.GetValueAsync(server, key));
        Assert.True(owner.Statistics.Reacquisitions == 0, log.Dump());
    }
}
