using System.Net;
using Flannel.Subnets;
using Flannel.Subnets.InMemory;
using Microsoft.Extensions.Time.Testing;

namespace Flannel.Agent.Tests;

public sealed class RemoteLeaseTrackerTests
{
    private static Lease L(string subnet, string publicIP, string? mac = null, long revision = 1, string? ipv6 = null) => new()
    {
        Subnet = IPNetwork.Parse(subnet),
        IPv6Subnet = ipv6 is null ? null : IPNetwork.Parse(ipv6),
        Attributes = new LeaseAttributes
        {
            PublicIP = IPAddress.Parse(publicIP),
            BackendType = "vxlan",
            BackendData = $$"""{"VNI":1,"VtepMAC":"{{mac ?? "aa:bb:cc:dd:ee:01"}}"}""",
        },
        Revision = revision,
        Expiration = DateTimeOffset.UnixEpoch.AddSeconds(revision),
    };

    private static Lease Bare(Lease lease) => new() { Subnet = lease.Subnet, IPv6Subnet = lease.IPv6Subnet, Attributes = new LeaseAttributes() };

    private static LeaseWatchResult Events(params LeaseEvent[] events) => LeaseWatchResult.FromEvents(events);

    private static readonly Lease Own = L("10.244.1.0/24", "198.18.0.1");

    [Fact]
    public void First_snapshot_becomes_added_events_without_the_own_lease()
    {
        var tracker = new RemoteLeaseTracker(Own);
        Lease b = L("10.244.2.0/24", "198.18.0.2");
        Lease c = L("10.244.3.0/24", "198.18.0.3");

        IReadOnlyList<LeaseEvent> events = tracker.Apply(LeaseWatchResult.FromSnapshot([Own, b, c]));

        Assert.Equal([new LeaseEvent(LeaseEventType.Added, b), new LeaseEvent(LeaseEventType.Added, c)], events);
        Assert.Equal(2, tracker.RemoteLeases.Count);
    }

    [Fact]
    public void Renewals_are_not_redelivered_but_attribute_changes_are()
    {
        var tracker = new RemoteLeaseTracker(Own);
        Lease b = L("10.244.2.0/24", "198.18.0.2");
        tracker.Apply(LeaseWatchResult.FromSnapshot([b]));

        Lease renewed = b with { Revision = 7, Expiration = b.Expiration!.Value.AddHours(24) };
        Assert.Empty(tracker.Apply(Events(new LeaseEvent(LeaseEventType.Added, renewed))));
        Assert.Equal(7, tracker.RemoteLeases[b.Key].Revision);

        Lease newMac = L("10.244.2.0/24", "198.18.0.2", mac: "aa:bb:cc:dd:ee:99", revision: 8);
        Assert.Equal([new LeaseEvent(LeaseEventType.Added, newMac)], tracker.Apply(Events(new LeaseEvent(LeaseEventType.Added, newMac))));
    }

    [Fact]
    public void Removal_carries_the_cached_attributes()
    {
        var tracker = new RemoteLeaseTracker(Own);
        Lease b = L("10.244.2.0/24", "198.18.0.2");
        tracker.Apply(LeaseWatchResult.FromSnapshot([b]));

        IReadOnlyList<LeaseEvent> events = tracker.Apply(Events(new LeaseEvent(LeaseEventType.Removed, Bare(b))));

        Assert.Equal([new LeaseEvent(LeaseEventType.Removed, b)], events);
        Assert.Empty(tracker.RemoteLeases);
    }

    [Fact]
    public void Removal_of_an_unknown_lease_is_dropped()
    {
        var tracker = new RemoteLeaseTracker(Own);
        tracker.Apply(LeaseWatchResult.FromSnapshot([]));
        Assert.Empty(tracker.Apply(Events(new LeaseEvent(LeaseEventType.Removed, Bare(L("10.244.9.0/24", "198.18.0.9"))))));
    }

    [Fact]
    public void Own_lease_events_are_filtered()
    {
        var tracker = new RemoteLeaseTracker(Own);
        tracker.Apply(LeaseWatchResult.FromSnapshot([]));
        Assert.Empty(tracker.Apply(Events(new LeaseEvent(LeaseEventType.Added, Own with { Revision = 5 }), new LeaseEvent(LeaseEventType.Removed, Bare(Own)))));
    }

    [Fact]
    public void Dual_stack_own_lease_is_recognised_by_either_subnet()
    {
        Lease own = L("10.244.1.0/24", "198.18.0.1", ipv6: "fd00:0:0:1::/64");
        var tracker = new RemoteLeaseTracker(own);
        Assert.Empty(tracker.Apply(LeaseWatchResult.FromSnapshot([own with { Subnet = null }])));
    }

    [Fact]
    public void A_resnapshot_is_diffed_against_the_cache()
    {
        var tracker = new RemoteLeaseTracker(Own);
        Lease b = L("10.244.2.0/24", "198.18.0.2");
        Lease c = L("10.244.3.0/24", "198.18.0.3");
        Lease d = L("10.244.4.0/24", "198.18.0.4");
        tracker.Apply(LeaseWatchResult.FromSnapshot([b, c]));

        Lease cRenewed = c with { Revision = 9 };
        Lease bChanged = L("10.244.2.0/24", "198.18.0.22", revision: 10);
        IReadOnlyList<LeaseEvent> events = tracker.Apply(LeaseWatchResult.FromSnapshot([bChanged, cRenewed, d, Own]));

        Assert.Equal(
            [new LeaseEvent(LeaseEventType.Added, bChanged), new LeaseEvent(LeaseEventType.Added, d)],
            events);

        events = tracker.Apply(LeaseWatchResult.FromSnapshot([d]));
        Assert.Equal(
            new HashSet<LeaseEvent> { new(LeaseEventType.Removed, bChanged), new(LeaseEventType.Removed, cRenewed) },
            events.ToHashSet());
    }

    [Fact]
    public void Taking_over_a_peers_subnet_removes_that_peer()
    {
        Lease b = L("10.244.2.0/24", "198.18.0.2");
        var tracker = new RemoteLeaseTracker(Own);
        tracker.Apply(LeaseWatchResult.FromSnapshot([b]));

        // We re-acquired and got b's old subnet (b's lease expired, we took it).
        Lease newOwn = L("10.244.2.0/24", "198.18.0.1", revision: 20);
        tracker.OwnLease = newOwn;
        // b's objects must go, or our own pods' traffic would still be sent to b's VTEP.
        Assert.Equal([new LeaseEvent(LeaseEventType.Removed, b)], tracker.Apply(Events(new LeaseEvent(LeaseEventType.Added, newOwn))));
        Assert.Empty(tracker.RemoteLeases);

        // Our old subnet now belongs to someone else: it is a remote lease.
        Lease taken = L("10.244.1.0/24", "198.18.0.5", revision: 21);
        Assert.Equal([new LeaseEvent(LeaseEventType.Added, taken)], tracker.Apply(Events(new LeaseEvent(LeaseEventType.Added, taken))));
    }

    [Fact]
    public void Own_renewals_and_peer_renewals_yield_nothing_and_a_removal_carries_the_latest_copy()
    {
        Lease b = L("10.244.2.0/24", "198.18.0.2");
        var tracker = new RemoteLeaseTracker(Own);

        Assert.Empty(tracker.Apply(LeaseWatchResult.FromSnapshot([Own])));
        Assert.Empty(tracker.Apply(Events(new LeaseEvent(LeaseEventType.Added, Own with { Revision = 3 }))));
        Assert.Equal([new LeaseEvent(LeaseEventType.Added, b)], tracker.Apply(Events(new LeaseEvent(LeaseEventType.Added, b))));
        Assert.Empty(tracker.Apply(Events(new LeaseEvent(LeaseEventType.Added, b with { Revision = 4 }))));
        Assert.Equal(
            [new LeaseEvent(LeaseEventType.Removed, b with { Revision = 4 })],
            tracker.Apply(Events(new LeaseEvent(LeaseEventType.Removed, Bare(b)))));
    }

    [Fact]
    public async Task Three_nodes_on_the_in_memory_store_track_each_other_through_its_watch()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider();
        using var registry = new InMemorySubnetRegistry("""{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}""", time);
        InMemorySubnetStore storeA = Store(registry, 1);
        Lease a = await storeA.AcquireLeaseAsync(new LeaseRequest { Attributes = Node(1) }, ct);
        Lease b = await Store(registry, 2).AcquireLeaseAsync(new LeaseRequest { Attributes = Node(2) }, ct);

        var tracker = new RemoteLeaseTracker(a);
        await using IAsyncEnumerator<LeaseWatchResult> watch = storeA.WatchLeasesAsync(ct).GetAsyncEnumerator(ct);

        Assert.Equal([new LeaseEvent(LeaseEventType.Added, b)], await NextBatchAsync());

        Lease c = await Store(registry, 3).AcquireLeaseAsync(new LeaseRequest { Attributes = Node(3) }, ct);
        Assert.Equal([new LeaseEvent(LeaseEventType.Added, c)], await NextBatchAsync());

        // Renewing c and a is not re-delivered; b's expiry is delivered with b's attributes.
        time.Advance(TimeSpan.FromHours(12));
        await Store(registry).RenewLeaseAsync(registry.GetLease(c.Key)!, ct);
        await Store(registry).RenewLeaseAsync(registry.GetLease(a.Key)!, ct);
        time.Advance(TimeSpan.FromHours(12));
        Assert.Equal([new LeaseEvent(LeaseEventType.Removed, b)], await NextBatchAsync());

        // The agent hands the backend only watch items that changed the remote set.
        async Task<IReadOnlyList<LeaseEvent>> NextBatchAsync()
        {
            while (await watch.MoveNextAsync())
            {
                IReadOnlyList<LeaseEvent> events = tracker.Apply(watch.Current);
                if (events.Count > 0)
                {
                    return events;
                }
            }

            throw new InvalidOperationException("the watch ended");
        }
    }

    private static LeaseAttributes Node(int n) => new()
    {
        PublicIP = IPAddress.Parse($"198.18.0.{n}"),
        BackendType = "vxlan",
        BackendData = """{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:01"}""",
    };

    private static InMemorySubnetStore Store(InMemorySubnetRegistry registry, int seed = 1) =>
        new(registry, new InMemorySubnetStoreOptions { RandomSeed = seed });
}
