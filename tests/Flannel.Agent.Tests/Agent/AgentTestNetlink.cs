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

    public AgentTestNetlink AddAddress(int index, string cidr, AddressFlags flags = AddressFlags.Permanent)
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

    /// <summary>Route replaces are recorded (through <see cref="ReplaceRouteHook"/>, which may throw); anything else is refused.</summary>
    public ValueTask<NetlinkBatchResult> ApplyAsync(NetlinkBatch batch, CancellationToken cancellationToken)
    {
        var errors = new NetlinkException?[batch.Count];
        for (int i = 0; i < batch.Count; i++)
        {
            if (batch.Operations[i] is not RouteReplace replace)
            {
                throw new NotSupportedException(batch.Operations[i].ToString());
            }

            try
            {
                ReplaceRouteHook?.Invoke(replace.Route);
                lock (ReplacedRoutes)
                {
                    ReplacedRoutes.Add(replace.Route);
                }
            }
            catch (NetlinkException ex)
            {
                errors[i] = ex;
            }
        }

        return ValueTask.FromResult(new NetlinkBatchResult(errors));
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    public ValueTask<IReadOnlyList<NeighborInfo>> ListNeighborsAsync(int linkIndex, AddressFamily? family, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask<IReadOnlyList<FdbEntryInfo>> ListFdbEntriesAsync(int linkIndex, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask<IReadOnlyList<NexthopInfo>> ListNexthopsAsync(byte? protocol, CancellationToken cancellationToken) => throw new NotSupportedException();

    public async IAsyncEnumerable<NetlinkNotification> WatchAsync(NetlinkNotificationGroups groups, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Delay(Timeout.Infinite, cancellationToken);
        yield break;
    }
}
