using System.Net;
using System.Net.Sockets;
using Flannel.Netlink;

namespace Flannel.Agent.Metrics;

/// <summary>
/// An <see cref="INetlink"/> decorator that counts, for one agent, the kernel objects written successfully and the
/// kernel's refusals by errno. The agent wraps the namespace's netlink with it so every backend is measured without
/// knowing about metrics. Every change goes through <see cref="ApplyAsync"/>, so that is the only method that counts;
/// reads and notifications pass through untouched.
/// </summary>
internal sealed class MeteredNetlink : INetlink
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
    public async ValueTask<NetlinkBatchResult> ApplyAsync(NetlinkBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        NetlinkBatchResult result = await _inner.ApplyAsync(batch, cancellationToken).ConfigureAwait(false);
        for (int i = 0; i < result.Count && i < batch.Count; i++)
        {
            string operation = batch.Operations[i].MessageName;
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
    public ValueTask<LinkInfo?> GetLinkAsync(string name, CancellationToken cancellationToken) => _inner.GetLinkAsync(name, cancellationToken);

    /// <inheritdoc />
    public ValueTask<LinkInfo?> GetLinkAsync(int index, CancellationToken cancellationToken) => _inner.GetLinkAsync(index, cancellationToken);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<LinkInfo>> ListLinksAsync(CancellationToken cancellationToken) => _inner.ListLinksAsync(cancellationToken);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<AddressInfo>> ListAddressesAsync(int? linkIndex, AddressFamily? family, CancellationToken cancellationToken) =>
        _inner.ListAddressesAsync(linkIndex, family, cancellationToken);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<RouteInfo>> ListRoutesAsync(RouteFilter filter, CancellationToken cancellationToken) =>
        _inner.ListRoutesAsync(filter, cancellationToken);

    /// <inheritdoc />
    public ValueTask<RouteInfo?> GetRouteToAsync(IPAddress destination, CancellationToken cancellationToken) =>
        _inner.GetRouteToAsync(destination, cancellationToken);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<NeighborInfo>> ListNeighborsAsync(int linkIndex, AddressFamily? family, CancellationToken cancellationToken) =>
        _inner.ListNeighborsAsync(linkIndex, family, cancellationToken);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<FdbEntryInfo>> ListFdbEntriesAsync(int linkIndex, CancellationToken cancellationToken) =>
        _inner.ListFdbEntriesAsync(linkIndex, cancellationToken);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<NexthopInfo>> ListNexthopsAsync(byte? protocol, CancellationToken cancellationToken) =>
        _inner.ListNexthopsAsync(protocol, cancellationToken);

    /// <inheritdoc />
    public IAsyncEnumerable<NetlinkNotification> WatchAsync(NetlinkNotificationGroups groups, CancellationToken cancellationToken) =>
        _inner.WatchAsync(groups, cancellationToken);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _inner.DisposeAsync();

    private static string ErrnoName(NetlinkException error) =>
        string.IsNullOrEmpty(error.ErrorName) ? error.Errno.ToString(System.Globalization.CultureInfo.InvariantCulture) : error.ErrorName;
}
