using System.Net;
using Flannel.Configuration;
using Flannel.Subnets;
using Flannel.Subnets.InMemory;

namespace Flannel.Agent.Tests;

/// <summary>The admission rules of <see cref="RemoteLeaseTracker"/>: one test per rule, plus first-wins and re-admission.</summary>
public sealed class RemoteLeaseAdmissionTests
{
    private static readonly NetworkConfig Config = new()
    {
        Network = IPNetwork.Parse("10.244.0.0/16"),
        IPv6Network = IPNetwork.Parse("fd00:10:244::/56"),
        EnableIPv6 = true,
        SubnetLen = 24,
        IPv6SubnetLen = 64,
    };

    private static readonly Lease Own = L("10.244.1.0/24", "198.18.0.1");

    private readonly List<(string Key, LeaseRejection Rejection)> _rejections = [];

    private static Lease L(string subnet, string publicIP, long created = 0, string? ipv6 = null, string? publicIPv6 = null, string mac = "0e:00:00:00:00:02") => new()
    {
        Subnet = IPNetwork.Parse(subnet),
        IPv6Subnet = ipv6 is null ? null : IPNetwork.Parse(ipv6),
        Attributes = new LeaseAttributes
        {
            PublicIP = IPAddress.Parse(publicIP),
            PublicIPv6 = publicIPv6 is null ? null : IPAddress.Parse(publicIPv6),
            BackendType = "vxlan",
            BackendData = $$"""{"VNI":1,"VtepMAC":"{{mac}}"}""",
        },
        CreateRevision = created,
        Revision = created,
    };

    private static LeaseEvent Added(Lease lease) => new(LeaseEventType.Added, lease);

    private static LeaseEvent Removed(Lease lease) => new(LeaseEventType.Removed, new Lease { Subnet = lease.Subnet, IPv6Subnet = lease.IPv6Subnet, Attributes = new LeaseAttributes() });

    private static LeaseWatchResult Events(params LeaseEvent[] events) => LeaseWatchResult.FromEvents(events);

    private RemoteLeaseTracker Tracker(ILeaseAdmission? backend = null, Lease? own = null) =>
        new(own ?? Own, Config, backend, (lease, rejection) => _rejections.Add((lease.Key, rejection)));

    [Theory]
    [InlineData("192.168.7.0/24")] // outside the network
    [InlineData("10.0.0.0/8")] // contains the whole network
    [InlineData("10.244.0.0/16")] // is the whole network
    [InlineData("10.245.0.0/24")] // next to it
    public void A_subnet_outside_Network_is_rejected_and_the_others_are_admitted(string subnet)
    {
        RemoteLeaseTracker tracker = Tracker();
        Lease hostile = L(subnet, "198.18.0.66");
        Lease good = L("10.244.2.0/24", "198.18.0.2");

        IReadOnlyList<LeaseEvent> events = tracker.Apply(LeaseWatchResult.FromSnapshot([hostile, good]));

        Assert.Equal([Added(good)], events);
        (string key, LeaseRejection rejection) = Assert.Single(_rejections);
        Assert.Equal(hostile.Key, key);
        Assert.Equal(LeaseRejection.OutsideNetwork, rejection.Rule);
        Assert.Contains(subnet, rejection.Reason, StringComparison.Ordinal);
        Assert.Contains("10.244.0.0/16", rejection.Reason, StringComparison.Ordinal);
        Assert.Equal(LeaseRejection.OutsideNetwork, tracker.RejectedLeases[hostile.Key].Rule);
    }

    [Fact]
    public void An_IPv6_subnet_outside_IPv6Network_is_rejected()
    {
        RemoteLeaseTracker tracker = Tracker();
        Lease hostile = L("10.244.3.0/24", "198.18.0.3", ipv6: "fd00:99::/64", publicIPv6: "fd00:198:18::3");

        Assert.Empty(tracker.Apply(LeaseWatchResult.FromSnapshot([hostile])));

        Assert.Equal(LeaseRejection.OutsideNetwork, Assert.Single(_rejections).Rejection.Rule);
        Assert.Contains("IPv6Network fd00:10:244::/56", _rejections[0].Rejection.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_lease_overlapping_our_subnet_is_rejected()
    {
        RemoteLeaseTracker tracker = Tracker();
        Lease hijack = L("10.244.1.0/25", "198.18.0.99");

        Assert.Empty(tracker.Apply(LeaseWatchResult.FromSnapshot([hijack])));

        LeaseRejection rejection = Assert.Single(_rejections).Rejection;
        Assert.Equal(LeaseRejection.Overlap, rejection.Rule);
        Assert.Equal("subnet 10.244.1.0/25 overlaps this node's subnet 10.244.1.0/24", rejection.Reason);
    }

    [Fact]
    public void Of_two_overlapping_new_leases_the_one_created_first_wins_whatever_the_order_seen()
    {
        RemoteLeaseTracker tracker = Tracker();
        Lease legit = L("10.244.2.0/24", "198.18.0.2", created: 10);
        Lease hijack = L("10.244.2.0/25", "198.18.0.99", created: 20);

        IReadOnlyList<LeaseEvent> events = tracker.Apply(LeaseWatchResult.FromSnapshot([hijack, legit]));

        Assert.Equal([Added(legit)], events);
        Assert.Equal(hijack.Key, Assert.Single(_rejections).Key);
        Assert.Equal("subnet 10.244.2.0/25 overlaps 10.244.2.0/24 of the earlier lease 10.244.2.0-24", _rejections[0].Rejection.Reason);
    }

    [Fact]
    public void An_admitted_lease_keeps_its_subnet_against_a_newcomer_and_the_newcomer_is_admitted_when_it_goes()
    {
        RemoteLeaseTracker tracker = Tracker();
        Lease legit = L("10.244.2.0/24", "198.18.0.2");
        tracker.Apply(LeaseWatchResult.FromSnapshot([legit]));

        // A wider lease that swallows the admitted one: it would hijack the route to 10.244.2.0/24.
        Lease wide = L("10.244.2.0/23", "198.18.0.99");
        Assert.Empty(tracker.Apply(Events(Added(wide))));
        Assert.Equal(LeaseRejection.Overlap, tracker.RejectedLeases[wide.Key].Rule);

        // Renewals of both change nothing and report nothing again.
        Assert.Empty(tracker.Apply(Events(Added(wide with { Revision = 5 }), Added(legit with { Revision = 6 }))));
        Assert.Single(_rejections);

        // The blocker goes: the newcomer is re-checked and admitted in the same batch.
        Assert.Equal([Removed(legit) with { Lease = legit with { Revision = 6 } }, Added(wide with { Revision = 5 })], tracker.Apply(Events(Removed(legit))));
        Assert.Empty(tracker.RejectedLeases);
    }

    [Fact]
    public void With_the_in_memory_store_the_lease_created_first_wins_in_whatever_order_the_store_lists_them()
    {
        // The store itself, not the test, gives the creation order: a later, overlapping lease loses even when a
        // listing (an agent starting) shows it first, and even after the earlier lease was renewed.
        using var registry = new InMemorySubnetRegistry("""{"Network":"10.244.0.0/16"}""");
        Lease legit = registry.TryCreate(IPNetwork.Parse("10.244.2.0/24"), null, L("10.244.2.0/24", "198.18.0.2").Attributes, TimeSpan.FromHours(1))!;
        Lease hijack = registry.TryCreate(IPNetwork.Parse("10.244.2.0/25"), null, L("10.244.2.0/25", "198.18.0.99").Attributes, TimeSpan.FromHours(1))!;
        Assert.NotNull(registry.TryUpdate(legit.Key, legit.Revision, legit.Attributes, TimeSpan.FromHours(1)));
        IReadOnlyList<Lease> listed = registry.ListLeases();
        Assert.Equal(2, listed.Count);

        foreach (IEnumerable<Lease> order in new[] { listed, listed.Reverse() })
        {
            _rejections.Clear();
            IReadOnlyList<LeaseEvent> events = Tracker().Apply(LeaseWatchResult.FromSnapshot([.. order]));

            Assert.Equal(legit.Key, Assert.Single(events).Lease.Key);
            Assert.Equal(hijack.Key, Assert.Single(_rejections).Key);
        }
    }

    [Fact]
    public void First_seen_breaks_the_tie_when_the_store_has_no_creation_order()
    {
        RemoteLeaseTracker tracker = Tracker();
        Lease first = L("10.244.4.0/24", "198.18.0.4");
        Lease second = L("10.244.4.128/25", "198.18.0.5");

        Assert.Equal([Added(first)], tracker.Apply(LeaseWatchResult.FromSnapshot([first, second])));
        Assert.Equal(second.Key, Assert.Single(_rejections).Key);
    }

    [Fact]
    public void A_lease_with_our_public_IP_is_rejected()
    {
        RemoteLeaseTracker tracker = Tracker();
        Lease selfPointing = L("10.244.7.0/24", "198.18.0.1");

        Assert.Empty(tracker.Apply(LeaseWatchResult.FromSnapshot([selfPointing])));

        LeaseRejection rejection = Assert.Single(_rejections).Rejection;
        Assert.Equal(LeaseRejection.OwnPublicIP, rejection.Rule);
        Assert.Equal("PublicIP 198.18.0.1 is this node's own address", rejection.Reason);
    }

    [Fact]
    public void A_lease_with_our_public_IPv6_is_rejected()
    {
        Lease own = L("10.244.1.0/24", "198.18.0.1", ipv6: "fd00:10:244:1::/64", publicIPv6: "fd00:198:18::1");
        RemoteLeaseTracker tracker = Tracker(own: own);

        Assert.Empty(tracker.Apply(LeaseWatchResult.FromSnapshot([L("10.244.7.0/24", "198.18.0.7", ipv6: "fd00:10:244:7::/64", publicIPv6: "fd00:198:18::1")])));

        Assert.Equal(LeaseRejection.OwnPublicIP, Assert.Single(_rejections).Rejection.Rule);
    }

    [Fact]
    public void The_backends_rules_are_applied_and_a_lease_fixed_later_is_admitted()
    {
        var backend = new RejectMac("01:00:5e:00:00:55");
        RemoteLeaseTracker tracker = Tracker(backend);
        Lease multicast = L("10.244.5.0/24", "198.18.0.5", mac: "01:00:5e:00:00:55");
        Lease good = L("10.244.6.0/24", "198.18.0.6");

        Assert.Equal([Added(good)], tracker.Apply(LeaseWatchResult.FromSnapshot([multicast, good])));
        Assert.Equal(("vtep-mac", multicast.Key), (Assert.Single(_rejections).Rejection.Rule, _rejections[0].Key));

        // The writer fixes its MAC: the changed lease is checked again and admitted.
        Lease fixedLease = L("10.244.5.0/24", "198.18.0.5", mac: "0e:00:00:00:00:05");
        Assert.Equal([Added(fixedLease)], tracker.Apply(Events(Added(fixedLease))));
        Assert.Empty(tracker.RejectedLeases);
    }

    [Fact]
    public void An_admitted_lease_that_changes_into_a_rejected_one_is_removed()
    {
        RemoteLeaseTracker tracker = Tracker(new RejectMac("01:00:5e:00:00:55"));
        Lease good = L("10.244.5.0/24", "198.18.0.5");
        tracker.Apply(LeaseWatchResult.FromSnapshot([good]));

        Lease turned = L("10.244.5.0/24", "198.18.0.5", mac: "01:00:5e:00:00:55");
        Assert.Equal([Removed(good) with { Lease = good }], tracker.Apply(Events(Added(turned))));
        Assert.Empty(tracker.RemoteLeases);
    }

    [Fact]
    public void A_rejected_lease_is_reported_once_and_forgotten_when_deleted()
    {
        RemoteLeaseTracker tracker = Tracker();
        Lease hostile = L("192.168.7.0/24", "198.18.0.66");
        tracker.Apply(LeaseWatchResult.FromSnapshot([hostile]));
        tracker.Apply(Events(Added(hostile with { Revision = 9 })));
        tracker.Apply(LeaseWatchResult.FromSnapshot([hostile with { Revision = 10 }]));
        Assert.Single(_rejections);

        // Peers coming and going re-check every rejected lease (a freed subnet may admit one): still reported once,
        // however much the cluster churns.
        Lease peer = L("10.244.5.0/24", "198.18.0.5");
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal([Added(peer)], tracker.Apply(Events(Added(peer))));
            Assert.Equal([Removed(peer) with { Lease = peer }], tracker.Apply(Events(Removed(peer))));
        }

        Assert.Single(_rejections);

        Assert.Empty(tracker.Apply(Events(Removed(hostile))));
        Assert.Empty(tracker.RejectedLeases);

        // Written again later, it is reported again.
        tracker.Apply(Events(Added(hostile)));
        Assert.Equal(2, _rejections.Count);
    }

    [Fact]
    public void When_our_own_subnet_moves_the_leases_it_blocked_are_admitted_and_those_it_now_overlaps_removed()
    {
        RemoteLeaseTracker tracker = Tracker();
        Lease blocked = L("10.244.1.128/25", "198.18.0.8");
        Lease peer = L("10.244.9.0/25", "198.18.0.9");
        tracker.Apply(LeaseWatchResult.FromSnapshot([blocked, peer]));
        Assert.Equal([peer.Key], tracker.RemoteLeases.Keys);

        tracker.OwnLease = L("10.244.9.0/24", "198.18.0.1");
        IReadOnlyList<LeaseEvent> events = tracker.Apply(Events());

        Assert.Equal(new HashSet<LeaseEvent> { Removed(peer) with { Lease = peer }, Added(blocked) }, events.ToHashSet());
        Assert.Equal([blocked.Key], tracker.RemoteLeases.Keys);
        Assert.Equal(LeaseRejection.Overlap, tracker.RejectedLeases[peer.Key].Rule);
    }

    [Fact]
    public void Overlap_lookups_stay_exact_with_many_peers()
    {
        RemoteLeaseTracker tracker = Tracker();
        var leases = Enumerable.Range(2, 250).Select(i => L($"10.244.{i}.0/24", $"198.18.1.{i}")).ToList();
        tracker.Apply(LeaseWatchResult.FromSnapshot(leases));
        Assert.Equal(250, tracker.RemoteLeases.Count);

        Lease inside = L("10.244.100.64/26", "198.18.2.1");
        Lease spanning = L("10.244.128.0/22", "198.18.2.2");
        Lease free = L("10.244.0.0/24", "198.18.2.3");
        Assert.Equal([Added(free)], tracker.Apply(Events(Added(inside), Added(spanning), Added(free))));
        Assert.Contains("10.244.100.0/24", tracker.RejectedLeases[inside.Key].Reason, StringComparison.Ordinal);
        Assert.Contains("10.244.131.0/24", tracker.RejectedLeases[spanning.Key].Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_a_config_every_subnet_is_in_range_as_before()
    {
        var tracker = new RemoteLeaseTracker(Own);
        Lease outside = L("192.168.7.0/24", "198.18.0.66");
        Assert.Equal([Added(outside)], tracker.Apply(LeaseWatchResult.FromSnapshot([outside])));
    }

    private sealed class RejectMac(string mac) : ILeaseAdmission
    {
        public LeaseRejection? Check(Lease lease) =>
            lease.Attributes.BackendData!.Contains(mac, StringComparison.Ordinal) ? new LeaseRejection("vtep-mac", $"VtepMAC '{mac}' is multicast") : null;
    }
}
