using System.Net;
using Flannel.Configuration;
using Flannel.Subnets;
using Flannel.Subnets.InMemory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Flannel.Core.Tests.Subnets.InMemory;

public sealed class InMemorySubnetStoreTests
{
    private const string Config = """{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}""";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static LeaseAttributes Node(int n, string mac = "aa:bb:cc:dd:ee:01") => new()
    {
        PublicIP = IPAddress.Parse($"198.18.0.{n}"),
        BackendType = "vxlan",
        BackendData = $$"""{"VNI":1,"VtepMAC":"{{mac}}"}""",
    };

    private static InMemorySubnetStore Store(InMemorySubnetRegistry registry, int seed = 1) =>
        new(registry, new InMemorySubnetStoreOptions { RandomSeed = seed });

    [Fact]
    public async Task Nodes_sharing_a_registry_get_distinct_subnets_and_see_each_other()
    {
        using var registry = new InMemorySubnetRegistry(Config, new FakeTimeProvider());
        var leases = new List<Lease>();
        for (int n = 1; n <= 20; n++)
        {
            // The same seed everywhere: every node first tries the same candidate, the list shows it taken.
            leases.Add(await Store(registry, seed: 5).AcquireLeaseAsync(new LeaseRequest { Attributes = Node(n) }, Ct));
        }

        Assert.Equal(20, leases.Select(l => l.Subnet).Distinct().Count());
        Assert.All(leases, l => Assert.True(SubnetAllocator.IsCompatible(registry.GetNetworkConfig(), l)));
        Assert.Equal(20, registry.ListLeases().Count);
    }

    [Fact]
    public async Task Lost_creation_race_is_retried()
    {
        using var registry = new InMemorySubnetRegistry(Config, new FakeTimeProvider());
        int raced = 0;

        // Right before our create, another node takes exactly the key we are about to create (3 times).
        void Compete(string key)
        {
            if (raced++ < 3)
            {
                registry.BeforeCreate = null;
                (IPNetwork? s, IPNetwork? s6) = SubnetKey.Parse(key);
                Assert.NotNull(registry.TryCreate(s, s6, Node(99 - raced), TimeSpan.FromHours(1)));
                registry.BeforeCreate = Compete;
            }
        }

        registry.BeforeCreate = Compete;

        Lease lease = await Store(registry).AcquireLeaseAsync(new LeaseRequest { Attributes = Node(1) }, Ct);

        Assert.Equal(Node(1), lease.Attributes);
        Assert.Equal(4, registry.ListLeases().Count); // three competitors and us
        Assert.Equal(4, registry.ListLeases().Select(l => l.Subnet).Distinct().Count());
    }

    [Fact]
    public async Task Race_retries_are_bounded()
    {
        using var registry = new InMemorySubnetRegistry(Config, new FakeTimeProvider());
        registry.BeforeCreate = key =>
        {
            Action<string>? hook = registry.BeforeCreate;
            registry.BeforeCreate = null;
            (IPNetwork? s, IPNetwork? s6) = SubnetKey.Parse(key);
            registry.TryCreate(s, s6, Node(99), TimeSpan.FromHours(1));
            registry.BeforeCreate = hook;
        };
        var store = new InMemorySubnetStore(registry, new InMemorySubnetStoreOptions { RandomSeed = 1, RaceRetries = 3 });

        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => store.AcquireLeaseAsync(new LeaseRequest { Attributes = Node(1) }, Ct).AsTask());
        Assert.StartsWith("max retries reached trying to acquire a subnet", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Restarted_node_reuses_its_lease_with_new_attributes()
    {
        using var registry = new InMemorySubnetRegistry(Config, new FakeTimeProvider());
        Lease first = await Store(registry).AcquireLeaseAsync(new LeaseRequest { Attributes = Node(1) }, Ct);

        Lease again = await Store(registry, seed: 99).AcquireLeaseAsync(new LeaseRequest { Attributes = Node(1, mac: "aa:bb:cc:dd:ee:02") }, Ct);

        Assert.Equal(first.Subnet, again.Subnet);
        Assert.Contains("aa:bb:cc:dd:ee:02", again.Attributes.BackendData, StringComparison.Ordinal);
        Assert.True(again.Revision > first.Revision);
        Assert.Single(registry.ListLeases());
    }

    [Fact]
    public async Task Previous_subnet_is_reused_when_free()
    {
        using var registry = new InMemorySubnetRegistry(Config, new FakeTimeProvider());
        var previous = IPNetwork.Parse("10.244.77.0/24");
        Lease lease = await Store(registry).AcquireLeaseAsync(new LeaseRequest { Attributes = Node(1), PreviousSubnet = previous }, Ct);
        Assert.Equal(previous, lease.Subnet);
    }

    [Fact]
    public async Task Reservation_is_honoured_and_keeps_no_ttl()
    {
        using var registry = new InMemorySubnetRegistry(Config, new FakeTimeProvider());
        registry.TryCreate(IPNetwork.Parse("10.244.50.0/24"), null, Node(5), ttl: null);

        // Another node never gets the reserved subnet, even when asking for it.
        Lease other = await Store(registry).AcquireLeaseAsync(
            new LeaseRequest { Attributes = Node(6), PreviousSubnet = IPNetwork.Parse("10.244.50.0/24") }, Ct);
        Assert.NotEqual(IPNetwork.Parse("10.244.50.0/24"), other.Subnet);

        // The owner gets it, and it stays a reservation through renewals.
        InMemorySubnetStore owner = Store(registry);
        Lease mine = await owner.AcquireLeaseAsync(new LeaseRequest { Attributes = Node(5, mac: "aa:bb:cc:dd:ee:05") }, Ct);
        Assert.Equal(IPNetwork.Parse("10.244.50.0/24"), mine.Subnet);
        Assert.True(mine.IsReservation);
        Assert.True((await owner.RenewLeaseAsync(mine, Ct)).IsReservation);
    }

    [Fact]
    public async Task Out_of_subnets_is_reported()
    {
        using var registry = new InMemorySubnetRegistry("""{"Network":"10.244.0.0/28"}""", new FakeTimeProvider());
        for (int n = 1; n <= 3; n++)
        {
            await Store(registry).AcquireLeaseAsync(new LeaseRequest { Attributes = Node(n) }, Ct);
        }

        await Assert.ThrowsAsync<OutOfSubnetsException>(() => Store(registry).AcquireLeaseAsync(new LeaseRequest { Attributes = Node(4) }, Ct).AsTask());
    }

    [Fact]
    public async Task Renew_extends_the_expiration_and_refuses_another_nodes_lease()
    {
        var time = new FakeTimeProvider();
        using var registry = new InMemorySubnetRegistry(Config, time);
        InMemorySubnetStore store = Store(registry);
        Lease lease = await store.AcquireLeaseAsync(new LeaseRequest { Attributes = Node(1) }, Ct);

        time.Advance(TimeSpan.FromHours(5));
        Lease renewed = await store.RenewLeaseAsync(lease, Ct);
        Assert.Equal(time.GetUtcNow() + TimeSpan.FromHours(24), renewed.Expiration);

        // The lease is taken over by another node: renewing must not overwrite it.
        registry.TryDelete(lease.Key);
        registry.TryCreate(lease.Subnet, null, Node(2), TimeSpan.FromHours(24));
        await Assert.ThrowsAsync<LeaseLostException>(() => store.RenewLeaseAsync(renewed, Ct).AsTask());
        Assert.Equal(Node(2), registry.GetLease(lease.Key)!.Attributes);

        registry.TryDelete(lease.Key);
        await Assert.ThrowsAsync<LeaseLostException>(() => store.RenewLeaseAsync(renewed, Ct).AsTask());
    }

    [Fact]
    public async Task Keep_renews_before_expiry()
    {
        var time = new FakeTimeProvider();
        using var registry = new InMemorySubnetRegistry(Config, time);
        var store = new InMemorySubnetStore(registry, new InMemorySubnetStoreOptions { RandomSeed = 1, LeaseTtl = TimeSpan.FromHours(24), RenewMargin = TimeSpan.FromHours(1) });
        Lease lease = await store.AcquireLeaseAsync(new LeaseRequest { Attributes = Node(1) }, Ct);

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using IAsyncEnumerator<Lease> keep = store.KeepLeaseAsync(lease, cts.Token).GetAsyncEnumerator(cts.Token);
        ValueTask<bool> next = keep.MoveNextAsync();

        // Whether the loop arms its renewal timer before or after the clock moves, it renews at the advanced time.
        for (int day = 1; day <= 3; day++)
        {
            time.Advance(TimeSpan.FromHours(23)); // renewal is due 1 h before expiry
            Assert.True(await next);
            Assert.Equal(lease.Subnet, keep.Current.Subnet);
            Assert.Equal(time.GetUtcNow() + TimeSpan.FromHours(24), keep.Current.Expiration);
            next = keep.MoveNextAsync();
        }

        // Without the renewals the lease would have expired two days ago.
        Assert.Single(registry.ListLeases());
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await next);
    }

    [Fact]
    public async Task Keep_renews_at_half_life_when_the_margin_is_longer_than_the_ttl()
    {
        var time = new FakeTimeProvider();
        using var registry = new InMemorySubnetRegistry(Config, time);
        var store = new InMemorySubnetStore(registry, new InMemorySubnetStoreOptions { RandomSeed = 1, LeaseTtl = TimeSpan.FromSeconds(30) });
        Lease lease = await store.AcquireLeaseAsync(new LeaseRequest { Attributes = Node(1) }, Ct);

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using IAsyncEnumerator<Lease> keep = store.KeepLeaseAsync(lease, cts.Token).GetAsyncEnumerator(cts.Token);
        ValueTask<bool> next = keep.MoveNextAsync();
        await WaitForWatchersAsync(registry, 1);
        await Task.Delay(50, Ct); // give a (wrong) zero-delay renewal loop the chance to show itself
        Assert.False(next.IsCompleted);
        Assert.Equal(lease.Revision, registry.GetLease(lease.Key)!.Revision);

        time.Advance(TimeSpan.FromSeconds(15));
        Assert.True(await next);
        Assert.Equal(time.GetUtcNow() + TimeSpan.FromSeconds(30), keep.Current.Expiration);
        cts.Cancel();
    }

    [Fact]
    public async Task Keep_reacquires_the_same_subnet_when_the_lease_is_deleted()
    {
        var time = new FakeTimeProvider();
        using var registry = new InMemorySubnetRegistry(Config, time);
        InMemorySubnetStore store = Store(registry);
        Lease lease = await store.AcquireLeaseAsync(new LeaseRequest { Attributes = Node(1) }, Ct);

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using IAsyncEnumerator<Lease> keep = store.KeepLeaseAsync(lease, cts.Token).GetAsyncEnumerator(cts.Token);
        ValueTask<bool> next = keep.MoveNextAsync();
        await WaitForWatchersAsync(registry, 1); // the loop watches its key: the deletion arrives as an event

        registry.TryDelete(lease.Key); // an operator runs etcdctl del

        Assert.True(await next);
        Assert.Equal(lease.Subnet, keep.Current.Subnet);
        Assert.Equal(Node(1), registry.GetLease(lease.Key)!.Attributes);
        cts.Cancel();
    }

    [Fact]
    public async Task Keep_moves_to_a_new_subnet_when_another_node_took_it()
    {
        var time = new FakeTimeProvider();
        using var registry = new InMemorySubnetRegistry(Config, time);
        InMemorySubnetStore store = Store(registry);
        Lease lease = await store.AcquireLeaseAsync(new LeaseRequest { Attributes = Node(1) }, Ct);

        // Expired while the node was partitioned; another node grabbed the subnet.
        time.Advance(TimeSpan.FromHours(24));
        registry.TryCreate(lease.Subnet, null, Node(2), TimeSpan.FromHours(24));

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using IAsyncEnumerator<Lease> keep = store.KeepLeaseAsync(lease, cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.True(await keep.MoveNextAsync());
        Assert.NotEqual(lease.Subnet, keep.Current.Subnet);
        Assert.Equal(Node(2), registry.GetLease(lease.Key)!.Attributes);
        Assert.Equal(Node(1), registry.GetLease(keep.Current.Key)!.Attributes);
        cts.Cancel();
    }

    [Fact]
    public async Task Revoke_deletes_only_our_own_lease()
    {
        using var registry = new InMemorySubnetRegistry(Config, new FakeTimeProvider());
        InMemorySubnetStore store = Store(registry);
        Lease lease = await store.AcquireLeaseAsync(new LeaseRequest { Attributes = Node(1) }, Ct);
        Lease foreign = lease with { Attributes = Node(2) };
        await store.RevokeLeaseAsync(foreign, Ct);
        Assert.Single(registry.ListLeases());
        await store.RevokeLeaseAsync(lease, Ct);
        Assert.Empty(registry.ListLeases());
    }

    [Fact]
    public async Task Node_hints_return_the_attributes_last_published_for_the_ip()
    {
        using var registry = new InMemorySubnetRegistry(Config, new FakeTimeProvider());
        InMemorySubnetStore store = Store(registry);
        await store.AcquireLeaseAsync(new LeaseRequest { Attributes = Node(1, mac: "aa:bb:cc:dd:ee:42") }, Ct);

        NodeHints hints = await store.GetNodeHintsAsync(IPAddress.Parse("198.18.0.1"), Ct);
        Assert.Equal(Node(1, mac: "aa:bb:cc:dd:ee:42"), hints.PreviousAttributes);
        Assert.Same(NodeHints.None, await store.GetNodeHintsAsync(IPAddress.Parse("198.18.0.9"), Ct));
        Assert.Same(NodeHints.None, await store.GetNodeHintsAsync(null, Ct));
    }

    [Fact]
    public async Task Dependency_injection_shares_one_registry_between_agents()
    {
        using var registry = new InMemorySubnetRegistry(Config, new FakeTimeProvider());
        var providers = new List<ServiceProvider>();
        try
        {
            for (int n = 1; n <= 2; n++)
            {
                var services = new ServiceCollection();
                services.AddFlannel().AddInMemorySubnetStore(registry, o => o.RandomSeed = 7);
                providers.Add(services.BuildServiceProvider());
            }

            ISubnetStore first = providers[0].GetRequiredService<ISubnetStore>();
            ISubnetStore second = providers[1].GetRequiredService<ISubnetStore>();
            Lease a = await first.AcquireLeaseAsync(new LeaseRequest { Attributes = Node(1) }, Ct);
            Lease b = await second.AcquireLeaseAsync(new LeaseRequest { Attributes = Node(2) }, Ct);
            Assert.NotEqual(a.Subnet, b.Subnet);
            Assert.Equal(24, (await second.GetNetworkConfigAsync(Ct)).SubnetLen);
        }
        finally
        {
            providers.ForEach(p => p.Dispose());
        }

        Assert.Equal(2, registry.ListLeases().Count); // the registry outlives the agents
    }

    [Fact]
    public async Task Dependency_injection_creates_a_registry_from_the_config()
    {
        var services = new ServiceCollection();
        services.AddFlannel().AddInMemorySubnetStore(o => o.NetworkConfig = Config);
        await using ServiceProvider provider = services.BuildServiceProvider();
        ISubnetStore store = provider.GetRequiredService<ISubnetStore>();
        Assert.Equal("vxlan", (await store.GetNetworkConfigAsync(Ct)).BackendType);

        var missing = new ServiceCollection();
        missing.AddFlannel().AddInMemorySubnetStore(o => o.RandomSeed = 1); // no NetworkConfig
        await using ServiceProvider broken = missing.BuildServiceProvider();
        Assert.Throws<InvalidOperationException>(() => broken.GetRequiredService<ISubnetStore>());
    }

    /// <summary>Waits (without a time limit of its own) until the registry has <paramref name="count"/> watchers.</summary>
    private static async Task WaitForWatchersAsync(InMemorySubnetRegistry registry, int count)
    {
        while (registry.WatcherCount < count)
        {
            await Task.Delay(1, TestContext.Current.CancellationToken);
        }
    }
}
