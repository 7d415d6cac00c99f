using System.Net;
using Flannel.Subnets;

namespace Flannel.Store.Etcd.Tests;

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
