using System.Net;
using Flannel.Subnets;
using Flannel.Subnets.InMemory;
using Microsoft.Extensions.Time.Testing;

namespace Flannel.Core.Tests.Subnets.InMemory;

public sealed class InMemorySubnetRegistryTests
{
    private const string Config = """{"Network":"10.244.0.0/16"}""";

    private static readonly IPNetwork S1 = IPNetwork.Parse("10.244.1.0/24");
    private static readonly IPNetwork S2 = IPNetwork.Parse("10.244.2.0/24");

    private static LeaseAttributes Node(int n) => new() { PublicIP = IPAddress.Parse($"198.18.0.{n}"), BackendType = "host-gw" };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void Create_is_create_if_absent()
    {
        using var registry = new InMemorySubnetRegistry(Config, new FakeTimeProvider());
        Lease? first = registry.TryCreate(S1, null, Node(1), TimeSpan.FromHours(1));
        Lease? second = registry.TryCreate(S1, null, Node(2), TimeSpan.FromHours(1));

        Assert.NotNull(first);
        Assert.Null(second);
        Assert.Equal(Node(1), registry.GetLease("10.244.1.0-24")!.Attributes);
    }

    [Fact]
    public void Every_change_bumps_the_revision_and_updates_are_compare_and_swap()
    {
        using var registry = new InMemorySubnetRegistry(Config, new FakeTimeProvider());
        Lease a = registry.TryCreate(S1, null, Node(1), TimeSpan.FromHours(1))!;
        Lease b = registry.TryCreate(S2, null, Node(2), TimeSpan.FromHours(1))!;
        Assert.Equal(1, a.Revision);
        Assert.Equal(2, b.Revision);

        Lease updated = registry.TryUpdate(a.Key, a.Revision, Node(1) with { BackendType = "vxlan" }, TimeSpan.FromHours(1))!;
        Assert.Equal(3, updated.Revision);
        Assert.Null(registry.TryUpdate(a.Key, a.Revision, Node(3), TimeSpan.FromHours(1))); // stale revision
        Assert.False(registry.TryDelete(a.Key, a.Revision));
        Assert.True(registry.TryDelete(a.Key, updated.Revision));
        Assert.Equal(4, registry.Revision);
        Assert.Null(registry.TryUpdate(a.Key, updated.Revision, Node(1), TimeSpan.FromHours(1))); // gone
    }

    [Fact]
    public void The_create_revision_is_the_revision_a_key_was_created_at_kept_by_updates_and_new_after_a_delete()
    {
        // The agent keeps the earlier of two overlapping leases by CreateRevision, as etcd's create_revision.
        using var registry = new InMemorySubnetRegistry(Config, new FakeTimeProvider());
        Lease a = registry.TryCreate(S1, null, Node(1), TimeSpan.FromHours(1))!;
        Lease b = registry.TryCreate(S2, null, Node(2), TimeSpan.FromHours(1))!;
        Assert.Equal(1, a.CreateRevision);
        Assert.Equal(2, b.CreateRevision);

        Lease renewed = registry.TryUpdate(a.Key, a.Revision, Node(1) with { BackendType = "vxlan" }, TimeSpan.FromHours(1))!;
        Assert.Equal(3, renewed.Revision);
        Assert.Equal(1, renewed.CreateRevision);
        Assert.Equal(1, registry.GetLease(a.Key)!.CreateRevision);
        Assert.Equal([1, 2], registry.ListLeases().Select(l => l.CreateRevision).Order());

        Assert.True(registry.TryDelete(a.Key));
        Lease recreated = registry.TryCreate(S1, null, Node(3), TimeSpan.FromHours(1))!;
        Assert.Equal(5, recreated.CreateRevision);
    }

    [Fact]
    public void Leases_expire_by_the_time_provider_and_reservations_never_do()
    {
        var time = new FakeTimeProvider();
        using var registry = new InMemorySubnetRegistry(Config, time);
        Lease lease = registry.TryCreate(S1, null, Node(1), TimeSpan.FromHours(24))!;
        registry.TryCreate(S2, null, Node(2), ttl: null);
        Assert.Equal(time.GetUtcNow() + TimeSpan.FromHours(24), lease.Expiration);

        time.Advance(TimeSpan.FromHours(24) - TimeSpan.FromSeconds(1));
        Assert.Equal(2, registry.ListLeases().Count);

        time.Advance(TimeSpan.FromSeconds(1));
        Lease remaining = Assert.Single(registry.ListLeases());
        Assert.True(remaining.IsReservation);

        time.Advance(TimeSpan.FromDays(365));
        Assert.Single(registry.ListLeases());
    }

    [Fact]
    public async Task Watch_gets_a_snapshot_then_every_change_including_expiry()
    {
        var time = new FakeTimeProvider();
        using var registry = new InMemorySubnetRegistry(Config, time);
        Lease existing = registry.TryCreate(S1, null, Node(1), TimeSpan.FromHours(1))!;

        await using IAsyncEnumerator<LeaseWatchResult> watch = registry.WatchAsync(Ct).GetAsyncEnumerator(Ct);
        Assert.True(await watch.MoveNextAsync());
        Assert.Equal([existing], watch.Current.Snapshot!);

        Lease created = registry.TryCreate(S2, null, Node(2), TimeSpan.FromHours(2))!;
        Assert.True(await watch.MoveNextAsync());
        Assert.Equal([new LeaseEvent(LeaseEventType.Added, created)], watch.Current.Events);

        time.Advance(TimeSpan.FromHours(1)); // the timer expires the first lease without anyone asking
        Assert.True(await watch.MoveNextAsync());
        LeaseEvent removed = Assert.Single(watch.Current.Events);
        Assert.Equal(LeaseEventType.Removed, removed.Type);
        Assert.Equal(S1, removed.Lease.Subnet);
        Assert.Equal(new LeaseAttributes(), removed.Lease.Attributes); // like an etcd DELETE: subnets only
        Assert.Equal(3, removed.Lease.Revision);
    }

    [Fact]
    public async Task Several_watchers_see_the_same_order()
    {
        using var registry = new InMemorySubnetRegistry(Config, new FakeTimeProvider());
        await using IAsyncEnumerator<LeaseWatchResult> w1 = registry.WatchAsync(Ct).GetAsyncEnumerator(Ct);
        await using IAsyncEnumerator<LeaseWatchResult> w2 = registry.WatchAsync(Ct).GetAsyncEnumerator(Ct);
        Assert.True(await w1.MoveNextAsync());
        Assert.True(await w2.MoveNextAsync());

        Lease a = registry.TryCreate(S1, null, Node(1), TimeSpan.FromHours(1))!;
        registry.TryDelete(a.Key);
        foreach (IAsyncEnumerator<LeaseWatchResult> w in new[] { w1, w2 })
        {
            Assert.True(await w.MoveNextAsync());
            Assert.Equal(LeaseEventType.Added, w.Current.Events[0].Type);
            Assert.True(await w.MoveNextAsync());
            Assert.Equal(LeaseEventType.Removed, w.Current.Events[0].Type);
        }
    }

    [Fact]
    public async Task Dispose_ends_the_watches()
    {
        var registry = new InMemorySubnetRegistry(Config, new FakeTimeProvider());
        await using IAsyncEnumerator<LeaseWatchResult> watch = registry.WatchAsync(Ct).GetAsyncEnumerator(Ct);
        Assert.True(await watch.MoveNextAsync());
        registry.Dispose();
        Assert.False(await watch.MoveNextAsync());
        Assert.Throws<ObjectDisposedException>(() => registry.TryCreate(S1, null, Node(1), null));
    }

    [Fact]
    public void Config_is_parsed_and_validated_on_read()
    {
        using var registry = new InMemorySubnetRegistry("""{"Network":"10.244.0.0/16"}""", new FakeTimeProvider());
        Assert.Equal(24, registry.GetNetworkConfig().SubnetLen);
        registry.SetNetworkConfig("""{"Network":"10.244.0.0/30"}""");
        Assert.Equal(
            "network is too small. Minimum useful network prefix is /28",
            Assert.Throws<Flannel.Configuration.NetworkConfigException>(registry.GetNetworkConfig).Message);
    }
}
