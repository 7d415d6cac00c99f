using System.Net;
using System.Net.Sockets;
using Flannel.Netlink;
using Flannel.Networking;

namespace Flannel.Agent.Metrics;

/// <summary>
/// An <see cref="INetlink"/> decorator that counts, for one agent, the kernel objects written successfully and the
/// kernel's refusals by errno. The agent wraps the namespace's netlink with it so every backend is measured without
/// knowing about metrics. Reads and notifications pass through untouched.
/// </summary>
public sealed class MeteredNetlink : INetlink
{
    private readonly INetlink _inner;
    private readonly FlannelMetrics _metrics;
    private readonly string _agentName;

    /// <summary>Wraps <paramref name="inner"/>; disposing the decorator disposes it.</summary>
    public MeteredNetlink(INetlink inner, FlannelMetrics metrics, string agentName)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(metrics);
        ArgumentException.ThrowIfNullOrEmpty(agentName);
        _inner = inner;
        _metrics = metrics;
        _agentName = agentName;
    }

    /// <summary>The decorated instance.</summary>
    public INetlink Inner => _inner;

    /// <inheritdoc />
    public ValueTask<LinkInfo> EnsureVxlanLinkAsync(VxlanLinkSpec spec, CancellationToken cancellationToken) =>
        WriteAsync("RTM_NEWLINK", () => _inner.EnsureVxlanLinkAsync(spec, cancellationToken));

    /// <inheritdoc />
    public ValueTask<LinkInfo> CreateLinkAsync(LinkSpec spec, CancellationToken cancellationToken) =>
        WriteAsync("RTM_NEWLINK", () => _inner.CreateLinkAsync(spec, cancellationToken));

    /// <inheritdoc />
    public ValueTask<LinkInfo?> GetLinkAsync(string name, CancellationToken cancellationToken) => _inner.GetLinkAsync(name, cancellationToken);

    /// <inheritdoc />
    public ValueTask<LinkInfo?> GetLinkAsync(int index, CancellationToken cancellationToken) => _inner.GetLinkAsync(index, cancellationToken);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<LinkInfo>> ListLinksAsync(CancellationToken cancellationToken) => _inner.ListLinksAsync(cancellationToken);

    /// <inheritdoc />
    public ValueTask DeleteLinkAsync(int index, CancellationToken cancellationToken) =>
        WriteAsync("RTM_DELLINK", () => _inner.DeleteLinkAsync(index, cancellationToken));

    /// <inheritdoc />
    public ValueTask SetLinkUpAsync(int index, bool up, CancellationToken cancellationToken) =>
        WriteAsync("RTM_NEWLINK", () => _inner.SetLinkUpAsync(index, up, cancellationToken));

    /// <inheritdoc />
    public ValueTask SetLinkMtuAsync(int index, int mtu, CancellationToken cancellationToken) =>
        WriteAsync("RTM_NEWLINK", () => _inner.SetLinkMtuAsync(index, mtu, cancellationToken));

    /// <inheritdoc />
    public ValueTask SetLinkAddressAsync(int index, MacAddress address, CancellationToken cancellationToken) =>
        WriteAsync("RTM_NEWLINK", () => _inner.SetLinkAddressAsync(index, address, cancellationToken));

    /// <inheritdoc />
    public ValueTask EnsureAddressAsync(int linkIndex, IPNetwork address, IPNetwork? replaceWithin, CancellationToken cancellationToken) =>
        WriteAsync("RTM_NEWADDR", () => _inner.EnsureAddressAsync(linkIndex, address, replaceWithin, cancellationToken));

    /// <inheritdoc />
    public ValueTask AddAddressAsync(int linkIndex, IPNetwork address, CancellationToken cancellationToken) =>
        WriteAsync("RTM_NEWADDR", () => _inner.AddAddressAsync(linkIndex, address, cancellationToken));

    /// <inheritdoc />
    public ValueTask DeleteAddressAsync(int linkIndex, IPNetwork address, CancellationToken cancellationToken) =>
        WriteAsync("RTM_DELADDR", () => _inner.DeleteAddressAsync(linkIndex, address, cancellationToken));

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<AddressInfo>> ListAddressesAsync(int? linkIndex, AddressFamily? family, CancellationToken cancellationToken) =>
        _inner.ListAddressesAsync(linkIndex, family, cancellationToken);

    /// <inheritdoc />
    public ValueTask ReplaceRouteAsync(RouteSpec route, CancellationToken cancellationToken) =>
        WriteAsync("RTM_NEWROUTE", () => _inner.ReplaceRouteAsync(route, cancellationToken));

    /// <inheritdoc />
    public ValueTask DeleteRouteAsync(RouteSpec route, CancellationToken cancellationToken) =>
        WriteAsync("RTM_DELROUTE", () => _inner.DeleteRouteAsync(route, cancellationToken));

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<RouteInfo>> ListRoutesAsync(RouteFilter filter, CancellationToken cancellationToken) =>
        _inner.ListRoutesAsync(filter, cancellationToken);

    /// <inheritdoc />
    public ValueTask<RouteInfo?> GetRouteToAsync(IPAddress destination, CancellationToken cancellationToken) =>
        _inner.GetRouteToAsync(destination, cancellationToken);

    /// <inheritdoc />
    public ValueTask ReplaceNeighborAsync(NeighborSpec neighbor, CancellationToken cancellationToken) =>
        WriteAsync("RTM_NEWNEIGH", () => _inner.ReplaceNeighborAsync(neighbor, cancellationToken));

    /// <inheritdoc />
    public ValueTask DeleteNeighborAsync(NeighborSpec neighbor, CancellationToken cancellationToken) =>
        WriteAsync("RTM_DELNEIGH", () => _inner.DeleteNeighborAsync(neighbor, cancellationToken));

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<NeighborInfo>> ListNeighborsAsync(int linkIndex, AddressFamily? family, CancellationToken cancellationToken) =>
        _inner.ListNeighborsAsync(linkIndex, family, cancellationToken);

    /// <inheritdoc />
    public ValueTask ReplaceFdbEntryAsync(FdbEntrySpec entry, CancellationToken cancellationToken) =>
        WriteAsync("RTM_NEWNEIGH", () => _inner.ReplaceFdbEntryAsync(entry, cancellationToken));

    /// <inheritdoc />
    public ValueTask DeleteFdbEntryAsync(FdbEntrySpec entry, CancellationToken cancellationToken) =>
        WriteAsync("RTM_DELNEIGH", () => _inner.DeleteFdbEntryAsync(entry, cancellationToken));

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<FdbEntryInfo>> ListFdbEntriesAsync(int linkIndex, CancellationToken cancellationToken) =>
        _inner.ListFdbEntriesAsync(linkIndex, cancellationToken);

    /// <inheritdoc />
    public ValueTask ReplaceNexthopAsync(NexthopSpec nexthop, CancellationToken cancellationToken) =>
        WriteAsync("RTM_NEWNEXTHOP", () => _inner.ReplaceNexthopAsync(nexthop, cancellationToken));

    /// <inheritdoc />
    public ValueTask DeleteNexthopAsync(uint id, CancellationToken cancellationToken) =>
        WriteAsync("RTM_DELNEXTHOP", () => _inner.DeleteNexthopAsync(id, cancellationToken));

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<NexthopInfo>> ListNexthopsAsync(byte? protocol, CancellationToken cancellationToken) =>
        _inner.ListNexthopsAsync(protocol, cancellationToken);

    /// <inheritdoc />
    public async ValueTask<NetlinkBatchResult> ApplyAsync(NetlinkBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        NetlinkBatchResult result = await _inner.ApplyAsync(batch, cancellationToken).ConfigureAwait(false);
        for (int i = 0; i < result.Count && i < batch.Count; i++)
        {
            string operation = OperationName(batch.Operations[i].Kind);
            if (result[i] is NetlinkException error)
            {
                _metrics.RecordNetlinkError(_agentName, operation, ErrnoName(error));
            }
            else
            {
                _metrics.RecordProgrammed(_agentName, operation);
            }
        }

        return result;
    }

    /// <inheritdoc />
    public IAsyncEnumerable<NetlinkNotification> WatchAsync(NetlinkNotificationGroups groups, CancellationToken cancellationToken) =>
        _inner.WatchAsync(groups, cancellationToken);

    /// <inheritdoc />
    public ValueTask WriteSysctlAsync(string key, string value, CancellationToken cancellationToken) =>
        _inner.WriteSysctlAsync(key, value, cancellationToken);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _inner.DisposeAsync();

    private static string ErrnoName(NetlinkException error) =>
        string.IsNullOrEmpty(error.ErrorName) ? error.Errno.ToString(System.Globalization.CultureInfo.InvariantCulture) : error.ErrorName;

    private static string OperationName(NetlinkOperationKind kind) => kind switch
    {
        NetlinkOperationKind.ReplaceRoute => "RTM_NEWROUTE",
        NetlinkOperationKind.DeleteRoute => "RTM_DELROUTE",
        NetlinkOperationKind.ReplaceNeighbor or NetlinkOperationKind.ReplaceFdbEntry => "RTM_NEWNEIGH",
        NetlinkOperationKind.DeleteNeighbor or NetlinkOperationKind.DeleteFdbEntry => "RTM_DELNEIGH",
        NetlinkOperationKind.ReplaceNexthop => "RTM_NEWNEXTHOP",
        NetlinkOperationKind.DeleteNexthop => "RTM_DELNEXTHOP",
        _ => kind.ToString(),
    };

    private async ValueTask WriteAsync(string operation, Func<ValueTask> write)
    {
        try
        {
            await write().ConfigureAwait(false);
            _metrics.RecordProgrammed(_agentName, operation);
        }
        catch (NetlinkException ex)
        {
            _metrics.RecordNetlinkError(_agentName, string.IsNullOrEmpty(ex.Operation) ? operation : ex.Operation, ErrnoName(ex));
            throw;
        }
    }

    private async ValueTask<T> WriteAsync<T>(string operation, Func<ValueTask<T>> write)
    {
        try
        {
            T result = await write().ConfigureAwait(false);
            _metrics.RecordProgrammed(_agentName, operation);
            return result;
        }
        catch (NetlinkException ex)
        {
            _metrics.RecordNetlinkError(_agentName, string.IsNullOrEmpty(ex.Operation) ? operation : ex.Operation, ErrnoName(ex));
            throw;
        }
    }
}
