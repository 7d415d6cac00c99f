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

    private sealed class DescribedPeer(string publicKey)
        : StateObject(new StateObjectKey(ReconcilePlanTests.PeerKind, ("wg0", publicKey)), new TestPeerContent(IPEndPoint.Parse("198.18.0.2:51820")), "a")
    {
        protected override string Describe() => $"peer {((ValueTuple<string, string>)Key.Identity).Item2} endpoint {((TestPeerContent)Content).Endpoint}";
    }

    private sealed class UndescribedPeer(string publicKey)
        : StateObject(new StateObjectKey(ReconcilePlanTests.PeerKind, ("wg0", publicKey)), new TestPeerContent(IPEndPoint.Parse("198.18.0.2:51820")), "a");
}
