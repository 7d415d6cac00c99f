using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Flannel.Netlink;

namespace Flannel.Agent.Tests;

/// <summary>
/// A small in-memory netlink for the agent's tests: links, addresses and routes that the test sets up, a scripted
/// <c>ip route get</c>, and a record of the routes written. Operations the agent never calls throw.
/// </summary>
internal sealed class AgentTestNetlink : INetlink
{
    public List<LinkInfo> Links { get; } = [];

    public List<AddressInfo> Addresses { get; } = [];

    public List<RouteInfo> Routes { get; } = [];

    public List<RouteSpec> ReplacedRoutes { get; } = [];

    public Func<IPAddress, RouteInfo?> RouteGet { get; set; } = _ => null;

    public Action<RouteSpec>? ReplaceRouteHook { get; set; }

    public AgentTestNetlink AddLink(int index, string name, int mtu = 1500)
    {
        Links.Add(new LinkInfo { Index = index, Name = name, Mtu = mtu, IsUp = true });
        return this;
    }

    public AgentTestNetlink AddAddress(int index, string cidr, uint flags = 0x80)
    {
        var network = IPNetwork.Parse(cidr);
        IPAddress local = IPAddress.Parse(cidr.Split('/')[0]);
        Addresses.Add(new AddressInfo { LinkIndex = index, Address = network, Local = local, Flags = flags });
        return this;
    }

    public AgentTestNetlink AddDefaultRoute(int index, string gateway)
    {
        IPAddress gw = IPAddress.Parse(gateway);
        Routes.Add(new RouteInfo
        {
            Destination = gw.AddressFamily == AddressFamily.InterNetwork ? new IPNetwork(IPAddress.Any, 0) : new IPNetwork(IPAddress.IPv6Any, 0),
            Gateway = gw,
            LinkIndex = index,
            Table = RouteDefaults.MainTable,
        });
        return this;
    }

    public ValueTask<IReadOnlyList<LinkInfo>> ListLinksAsync(CancellationToken cancellationToken) => new([.. Links]);

    public ValueTask<IReadOnlyList<AddressInfo>> ListAddressesAsync(int? linkIndex, AddressFamily? family, CancellationToken cancellationToken) =>
        new([.. Addresses.Where(a => (linkIndex is null || a.LinkIndex == linkIndex) && (family is null || a.Local.AddressFamily == family))]);

    public ValueTask<IReadOnlyList<RouteInfo>> ListRoutesAsync(RouteFilter filter, CancellationToken cancellationToken) =>
        new([.. Routes.Where(r => filter.Family is null || r.Destination.BaseAddress.AddressFamily == filter.Family)]);

    public ValueTask<RouteInfo?> GetRouteToAsync(IPAddress destination, CancellationToken cancellationToken) => new(RouteGet(destination));

    public ValueTask<LinkInfo?> GetLinkAsync(string name, CancellationToken cancellationToken) => new(Links.FirstOrDefault(l => l.Name == name));

    public ValueTask<LinkInfo?> GetLinkAsync(int index, CancellationToken cancellationToken) => new(Links.FirstOrDefault(l => l.Index == index));

    public ValueTask ReplaceRouteAsync(RouteSpec route, CancellationToken cancellationToken)
    {
        ReplaceRouteHook?.Invoke(route);
        lock (ReplacedRoutes)
        {
            ReplacedRoutes.Add(route);
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    public ValueTask<LinkInfo> EnsureVxlanLinkAsync(VxlanLinkSpec spec, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask<LinkInfo> CreateLinkAsync(LinkSpec spec, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask DeleteLinkAsync(int index, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask SetLinkUpAsync(int index, bool up, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask SetLinkMtuAsync(int index, int mtu, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask SetLinkAddressAsync(int index, MacAddress address, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask EnsureAddressAsync(int linkIndex, IPNetwork address, IPNetwork? replaceWithin, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask AddAddressAsync(int linkIndex, IPNetwork address, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask DeleteAddressAsync(int linkIndex, IPNetwork address, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask DeleteRouteAsync(RouteSpec route, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask ReplaceNeighborAsync(NeighborSpec neighbor, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask DeleteNeighborAsync(NeighborSpec neighbor, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask<IReadOnlyList<NeighborInfo>> ListNeighborsAsync(int linkIndex, AddressFamily? family, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask ReplaceFdbEntryAsync(FdbEntrySpec entry, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask DeleteFdbEntryAsync(FdbEntrySpec entry, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask<IReadOnlyList<FdbEntryInfo>> ListFdbEntriesAsync(int linkIndex, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask ReplaceNexthopAsync(NexthopSpec nexthop, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask DeleteNexthopAsync(uint id, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask<IReadOnlyList<NexthopInfo>> ListNexthopsAsync(byte? protocol, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask<NetlinkBatchResult> ApplyAsync(NetlinkBatch batch, CancellationToken cancellationToken) => throw new NotSupportedException();

    public async IAsyncEnumerable<NetlinkNotification> WatchAsync(NetlinkNotificationGroups groups, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Delay(Timeout.Infinite, cancellationToken);
        yield break;
    }

    public ValueTask WriteSysctlAsync(string key, string value, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}
