using System.Net;
using Flannel.Netlink;

namespace Flannel.Reconciliation.Tests;

/// <summary>
/// Descriptions are made when asked for (the engine keeps every peer's objects, and only errors and repairs print
/// them); they must read exactly as the ones made up front did, which logs, `flanneld status` and tests quote.
/// </summary>
public sealed class StateObjectDescriptionTests
{
    private static readonly IPAddress Gateway = IPAddress.Parse("10.244.1.0");
    private static readonly IPNetwork Subnet = IPNetwork.Parse("10.244.1.0/24");
    private static readonly MacAddress Mac = MacAddress.Parse("0a:58:0a:f4:01:01");

    public static TheoryData<string, KernelObject> Cases => new()
    {
        {
            "neigh 10.244.1.0 lladdr 0a:58:0a:f4:01:01 dev #5",
            KernelObject.ForNeighbor(new NeighborSpec { LinkIndex = 5, Address = Gateway, LinkLayerAddress = Mac }, isPermanent: true, "10.244.1.0-24")
        },
        {
            "fdb 0a:58:0a:f4:01:01 dev #5 dst 198.18.0.2",
            KernelObject.ForFdbEntry(new FdbEntrySpec { LinkIndex = 5, MacAddress = Mac, Destination = IPAddress.Parse("198.18.0.2") }, isPermanent: true, "10.244.1.0-24")
        },
        {
            "nexthop id 7 via 10.244.1.0 dev #5 onlink",
            KernelObject.ForNexthop(new NexthopSpec { Id = 7, Gateway = Gateway, LinkIndex = 5, OnLink = true }, "10.244.1.0-24")
        },
        {
            "10.244.1.0/24 via 10.244.1.0 dev #5 onlink",
            KernelObject.ForRoute(new RouteSpec { Destination = Subnet, Gateway = Gateway, LinkIndex = 5, OnLink = true, Protocol = RouteDefaults.ProtocolFlannel }, "10.244.1.0-24")
        },
        {
            "10.244.1.0/24 nhid 7",
            KernelObject.ForRoute(new RouteSpec { Destination = Subnet, NexthopId = 7, Protocol = RouteDefaults.ProtocolFlannel }, "10.244.1.0-24")
        },
        {
            "10.244.1.0/24 via 198.18.0.2 table 100",
            KernelObject.ForRoute(new RouteSpec { Destination = Subnet, Gateway = IPAddress.Parse("198.18.0.2"), Table = 100 }, owner: null)
        },
        {
            // Observed through a nexthop object: the kernel reports the object's gateway and device too, and the
            // delete operation leaves them out; the description says what was found.
            "10.244.1.0/24 nhid 7 proto 70",
            KernelObject.ForObservedRoute(new RouteInfo { Destination = Subnet, Gateway = Gateway, LinkIndex = 5, OnLink = true, NexthopId = 7, Table = RouteDefaults.MainTable, Protocol = 70 })
        },
        {
            "10.244.1.0/24 via 10.244.1.0 dev #5 onlink proto 70",
            KernelObject.ForObservedRoute(new RouteInfo { Destination = Subnet, Gateway = Gateway, LinkIndex = 5, OnLink = true, Table = RouteDefaults.MainTable, Protocol = 70 })
        },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Kernel_objects_describe_themselves_when_asked(string expected, KernelObject kernelObject)
    {
        Assert.Equal(expected, kernelObject.Description);
        Assert.Equal(expected, kernelObject.ToString());
    }

    [Fact]
    public void An_object_made_without_a_description_is_described_by_its_override_or_else_its_key()
    {
        Assert.Equal("peer abc endpoint 198.18.0.2:51820", new DescribedPeer("abc").Description);
        Assert.Equal("test-peer (wg0, abc)", new UndescribedPeer("abc").Description);
        Assert.Equal("peer abc endpoint 198.18.0.2:51820", ReconcilePlanTests.Peer("abc").Description); // given up front
    }

    [Fact]
    public void Kernel_objects_make_their_content_from_their_spec_when_asked_and_observed_routes_keep_what_was_reported()
    {
        NeighborSpec neighbor = new() { LinkIndex = 5, Address = Gateway, LinkLayerAddress = Mac };
        FdbEntrySpec fdb = new() { LinkIndex = 5, MacAddress = Mac, Destination = IPAddress.Parse("198.18.0.2") };
        RouteSpec route = new() { Destination = Subnet, Gateway = Gateway, LinkIndex = 5, OnLink = true, Protocol = RouteDefaults.ProtocolFlannel };

        Assert.Equal(new NeighborContent(Mac, IsPermanent: true), KernelObject.ForNeighbor(neighbor, isPermanent: true, "o").Content);
        Assert.Equal(new NeighborContent(Mac, IsPermanent: false), KernelObject.ForNeighbor(neighbor, isPermanent: false, "o").Content);
        Assert.Equal(new FdbContent(IsPermanent: true), KernelObject.ForFdbEntry(fdb, isPermanent: true, "o").Content);
        Assert.Equal(new FdbContent(IsPermanent: false), KernelObject.ForFdbEntry(fdb, isPermanent: false, "o").Content);
        Assert.Equal(
            new NexthopContent(Gateway, 5, OnLink: true),
            KernelObject.ForNexthop(new NexthopSpec { Id = 7, Gateway = Gateway, LinkIndex = 5, OnLink = true }, "o").Content);
        Assert.Equal(new RouteContent(Gateway, 5, OnLink: true, NexthopId: null), KernelObject.ForRoute(route, "o").Content);

        // Through a nexthop object the delete leaves the gateway and device out; the content is what the kernel said.
        KernelObject observed = KernelObject.ForObservedRoute(new RouteInfo { Destination = Subnet, Gateway = Gateway, LinkIndex = 5, OnLink = true, NexthopId = 7, Table = RouteDefaults.MainTable, Protocol = 70 });
        Assert.Equal(new RouteContent(Gateway, 5, OnLink: true, NexthopId: 7), observed.Content);
    }

    [Fact]
    public void An_object_made_without_content_that_does_not_make_one_says_so()
    {
        InvalidOperationException e = Assert.Throws<InvalidOperationException>(() => new ContentlessPeer("abc").Content);
        Assert.Contains("ContentlessPeer", e.Message, StringComparison.Ordinal);
    }

    private sealed class ContentlessPeer(string publicKey)
        : StateObject(new StateObjectKey(ReconcilePlanTests.PeerKind, ("wg0", publicKey)), owner: "a");

    private sealed class DescribedPeer(string publicKey)
        : StateObject(new StateObjectKey(ReconcilePlanTests.PeerKind, ("wg0", publicKey)), new TestPeerContent(IPEndPoint.Parse("198.18.0.2:51820")), "a")
    {
        protected override string Describe() => $"peer {((ValueTuple<string, string>)Key.Identity).Item2} endpoint {((TestPeerContent)Content).Endpoint}";
    }

    private sealed class UndescribedPeer(string publicKey)
        : StateObject(new StateObjectKey(ReconcilePlanTests.PeerKind, ("wg0", publicKey)), new TestPeerContent(IPEndPoint.Parse("198.18.0.2:51820")), "a");
}
