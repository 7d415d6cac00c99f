using System.Net;
using Flannel.Netlink;

namespace Flannel.Reconciliation.Tests;

/// <summary>The plan's ordering rules and its diff, as tables.</summary>
public sealed class ReconcilePlanTests
{
    internal static readonly StateObjectKind PeerKind = new("test-peer", CreateOrder: 50, DeleteOrder: 500);

    private static KernelObject Route(string destination, string via = "198.18.0.2", string? owner = "a") =>
        KernelObject.ForRoute(new RouteSpec { Destination = IPNetwork.Parse(destination), Gateway = IPAddress.Parse(via), Protocol = RouteDefaults.ProtocolFlannel }, owner);

    private static KernelObject Neighbor(string address, string mac = "0a:58:0a:f4:01:01", string? owner = "a") =>
        KernelObject.ForNeighbor(new NeighborSpec { LinkIndex = 5, Address = IPAddress.Parse(address), LinkLayerAddress = MacAddress.Parse(mac) }, isPermanent: true, owner);

    private static KernelObject Fdb(string mac, string destination = "198.18.0.2", string? owner = "a") =>
        KernelObject.ForFdbEntry(new FdbEntrySpec { LinkIndex = 5, MacAddress = MacAddress.Parse(mac), Destination = IPAddress.Parse(destination) }, isPermanent: true, owner);

    private static KernelObject Nexthop(uint id, string? owner = "a") =>
        KernelObject.ForNexthop(new NexthopSpec { Id = id, Gateway = IPAddress.Parse("10.244.1.0"), LinkIndex = 5, OnLink = true }, owner);

    internal static TestPeer Peer(string publicKey, string endpoint = "198.18.0.2:51820", string? owner = "a") =>
        new(publicKey, IPEndPoint.Parse(endpoint), owner);

    private static string Describe(ReconcilePlan plan) =>
        string.Join(", ", plan.Steps.Select(s => $"{s.Action.ToString().ToLowerInvariant()} {s.Target.Kind.Name} {s.Target.Key.Identity}"));

    private static string Kinds(ReconcilePlan plan) =>
        string.Join(", ", plan.Steps.Select(s => $"{s.Action.ToString().ToLowerInvariant()} {s.Target.Kind.Name}"));

    public static TheoryData<string, StateObject[], StateObject[], string> OrderingCases => new()
    {
        {
            "a new vxlan peer: neighbour, FDB, nexthop, route last (no ARP for the gateway)",
            [Route("10.244.1.0/24"), Nexthop(1), Fdb("0a:58:0a:f4:01:01"), Neighbor("10.244.1.0")],
            [],
            "added neighbor, added fdb, added nexthop, added route"
        },
        {
            "a vanished vxlan peer: route, nexthop, neighbour, FDB entry last",
            [],
            [Fdb("0a:58:0a:f4:01:01", owner: null), Neighbor("10.244.1.0", owner: null), Nexthop(1, owner: null), Route("10.244.1.0/24", owner: null)],
            "deleted route, deleted nexthop, deleted neighbor, deleted fdb"
        },
        {
            "every delete comes before any create (the stale FDB entry goes before its replacement)",
            [Fdb("0a:58:0a:f4:01:01", destination: "198.18.0.9"), Route("10.244.2.0/24")],
            [Fdb("0a:58:0a:f4:01:01", owner: null), Route("10.244.3.0/24", owner: null)],
            "deleted route, deleted fdb, added fdb, added route"
        },
        {
            "a backend kind takes its slots: peers created before routes, deleted after them",
            [Route("10.244.1.0/24"), Peer("new")],
            [Route("10.244.9.0/24", owner: null), Peer("old", owner: null)],
            "deleted route, deleted test-peer, added test-peer, added route"
        },
        {
            "a content change is a fix, in create order",
            [Route("10.244.1.0/24", via: "198.18.0.3"), Peer("k", endpoint: "198.18.0.3:51820")],
            [Route("10.244.1.0/24", via: "198.18.0.2", owner: null), Peer("k", owner: null)],
            "fixed test-peer, fixed route"
        },
    };

    [Theory]
    [MemberData(nameof(OrderingCases))]
    public void Steps_follow_the_ordering_rules(string rule, StateObject[] desired, StateObject[] observed, string expected)
    {
        ReconcilePlan plan = ReconcilePlan.Create(desired, observed);
        Assert.True(expected == Kinds(plan), $"{rule}: expected [{expected}], got [{Kinds(plan)}]");
    }

    [Fact]
    public void Objects_of_one_kind_keep_their_input_order()
    {
        ReconcilePlan plan = ReconcilePlan.Create([Route("10.244.3.0/24"), Neighbor("10.244.3.0"), Route("10.244.1.0/24"), Route("10.244.2.0/24")], []);
        Assert.Equal(
            "added neighbor 5, 10.244.3.0, added route 254, 10.244.3.0/24, added route 254, 10.244.1.0/24, added route 254, 10.244.2.0/24",
            Describe(plan).Replace("(", string.Empty, StringComparison.Ordinal).Replace(")", string.Empty, StringComparison.Ordinal));
    }

    [Fact]
    public void Nothing_is_sent_when_the_observed_state_satisfies_the_desired_one()
    {
        ReconcilePlan plan = ReconcilePlan.Create([Route("10.244.1.0/24"), Peer("k")], [Route("10.244.1.0/24", owner: null), Peer("k", owner: null)]);
        Assert.True(plan.IsEmpty);
        Assert.Equal(2, plan.DesiredByOwner["a"].Count);
    }

    [Fact]
    public void Two_peers_wanting_one_key_the_first_wins_and_only_it_owns_the_object()
    {
        ReconcilePlan plan = ReconcilePlan.Create([Route("10.244.1.0/24", via: "198.18.0.2", owner: "a"), Route("10.244.1.0/24", via: "198.18.0.3", owner: "b")], []);
        PlannedStep step = Assert.Single(plan.Steps);
        Assert.Equal("a", step.Target.Owner);
        Assert.False(plan.DesiredByOwner.ContainsKey("b"));
    }

    [Fact]
    public void Only_observed_objects_are_ever_deleted()
    {
        ReconcilePlan plan = ReconcilePlan.Create([], [Peer("gone", owner: null)]);
        PlannedStep step = Assert.Single(plan.Steps);
        Assert.Equal(RepairAction.Deleted, step.Action);
        Assert.Equal(PeerKind, step.Target.Kind);
    }

    public static TheoryData<string, IStateContent, IStateContent, bool> SatisfactionCases => new()
    {
        { "same gateway, same device", new RouteContent(IPAddress.Parse("198.18.0.2"), 3, false, null), new RouteContent(IPAddress.Parse("198.18.0.2"), 3, false, null), true },
        { "another gateway", new RouteContent(IPAddress.Parse("198.18.0.2"), 3, false, null), new RouteContent(IPAddress.Parse("198.18.0.3"), 3, false, null), false },
        { "no device asked: any device the kernel resolved", new RouteContent(IPAddress.Parse("198.18.0.2"), null, false, null), new RouteContent(IPAddress.Parse("198.18.0.2"), 7, false, null), true },
        { "another device", new RouteContent(IPAddress.Parse("198.18.0.2"), 3, false, null), new RouteContent(IPAddress.Parse("198.18.0.2"), 4, false, null), false },
        { "onlink asked, kernel route not onlink", new RouteContent(IPAddress.Parse("10.244.1.0"), 3, true, null), new RouteContent(IPAddress.Parse("10.244.1.0"), 3, false, null), false },
        { "onlink not asked, kernel route onlink", new RouteContent(IPAddress.Parse("10.244.1.0"), 3, false, null), new RouteContent(IPAddress.Parse("10.244.1.0"), 3, true, null), true },
        { "same nexthop id (the kernel's reported gateway is ignored)", new RouteContent(null, null, false, 7), new RouteContent(IPAddress.Parse("10.244.1.0"), 3, true, 7), true },
        { "another nexthop id", new RouteContent(null, null, false, 7), new RouteContent(null, null, false, 8), false },
        { "nexthop asked, kernel route via a gateway", new RouteContent(null, null, false, 7), new RouteContent(IPAddress.Parse("10.244.1.0"), 3, true, null), false },
        { "route content never satisfied by another kind's", new RouteContent(null, null, false, 7), new NexthopContent(null, null, false), false },
        { "neighbour: same MAC, permanent", new NeighborContent(MacAddress.Parse("0a:58:0a:f4:01:01"), true), new NeighborContent(MacAddress.Parse("0a:58:0a:f4:01:01"), true), true },
        { "neighbour: another MAC", new NeighborContent(MacAddress.Parse("0a:58:0a:f4:01:01"), true), new NeighborContent(MacAddress.Parse("0a:58:0a:f4:01:02"), true), false },
        { "neighbour: learned, not permanent", new NeighborContent(MacAddress.Parse("0a:58:0a:f4:01:01"), true), new NeighborContent(MacAddress.Parse("0a:58:0a:f4:01:01"), false), false },
        { "FDB: permanent", new FdbContent(true), new FdbContent(true), true },
        { "FDB: not permanent", new FdbContent(true), new FdbContent(false), false },
        { "nexthop: same gateway, device, onlink", new NexthopContent(IPAddress.Parse("10.244.1.0"), 5, true), new NexthopContent(IPAddress.Parse("10.244.1.0"), 5, true), true },
        { "nexthop: onlink lost", new NexthopContent(IPAddress.Parse("10.244.1.0"), 5, true), new NexthopContent(IPAddress.Parse("10.244.1.0"), 5, false), false },
        { "nexthop: another device", new NexthopContent(IPAddress.Parse("10.244.1.0"), 5, true), new NexthopContent(IPAddress.Parse("10.244.1.0"), 6, true), false },
    };

    [Theory]
    [MemberData(nameof(SatisfactionCases))]
    public void IsSatisfiedBy(string rule, IStateContent desired, IStateContent observed, bool expected) =>
        Assert.True(expected == desired.IsSatisfiedBy(observed), $"{rule}: expected {expected}");
}

/// <summary>A backend-defined state object: a tunnel peer keyed by (device, public key), like a WireGuard peer.</summary>
internal sealed class TestPeer(string publicKey, IPEndPoint endpoint, string? owner)
    : StateObject(new StateObjectKey(ReconcilePlanTests.PeerKind, ("wg0", publicKey)), new TestPeerContent(endpoint), owner, $"peer {publicKey} endpoint {endpoint}")
{
    public string PublicKey { get; } = publicKey;

    public IPEndPoint Endpoint { get; } = endpoint;
}

internal sealed record TestPeerContent(IPEndPoint Endpoint) : IStateContent
{
    public bool IsSatisfiedBy(IStateContent observed) => observed is TestPeerContent other && other.Endpoint.Equals(Endpoint);
}
