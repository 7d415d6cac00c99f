namespace Flannel.Netlink;

/// <summary>The kind of one operation in a <see cref="NetlinkBatch"/>.</summary>
public enum NetlinkOperationKind
{
    /// <summary><see cref="INetlink.ReplaceRouteAsync"/>.</summary>
    ReplaceRoute,

    /// <summary><see cref="INetlink.DeleteRouteAsync"/>.</summary>
    DeleteRoute,

    /// <summary><see cref="INetlink.ReplaceNeighborAsync"/>.</summary>
    ReplaceNeighbor,

    /// <summary><see cref="INetlink.DeleteNeighborAsync"/>.</summary>
    DeleteNeighbor,

    /// <summary><see cref="INetlink.ReplaceFdbEntryAsync"/>.</summary>
    ReplaceFdbEntry,

    /// <summary><see cref="INetlink.DeleteFdbEntryAsync"/>.</summary>
    DeleteFdbEntry,

    /// <summary><see cref="INetlink.ReplaceNexthopAsync"/>.</summary>
    ReplaceNexthop,

    /// <summary><see cref="INetlink.DeleteNexthopAsync"/>.</summary>
    DeleteNexthop,
}

/// <summary>One operation of a batch: its kind and its spec (a <see cref="RouteSpec"/>, <see cref="NeighborSpec"/>,
/// <see cref="FdbEntrySpec"/>, <see cref="NexthopSpec"/>, or for a nexthop delete a boxed <see cref="uint"/> id).</summary>
/// <param name="Kind">What to do.</param>
/// <param name="Spec">What to do it to.</param>
public readonly record struct NetlinkOperation(NetlinkOperationKind Kind, object Spec);

/// <summary>
/// Operations to send together with <see cref="INetlink.ApplyAsync"/>. Operations are applied in order;
/// the kernel processes each independently, so ordering only matters between operations on one object
/// (neighbour, then FDB entry, then route, as flannel programs a peer).
/// </summary>
public sealed class NetlinkBatch
{
    private readonly List<NetlinkOperation> _operations;

    /// <summary>Creates an empty batch.</summary>
    public NetlinkBatch()
        : this(0)
    {
    }

    /// <summary>Creates an empty batch with room for <paramref name="capacity"/> operations.</summary>
    public NetlinkBatch(int capacity) => _operations = new List<NetlinkOperation>(capacity);

    /// <summary>The operations, in order.</summary>
    public IReadOnlyList<NetlinkOperation> Operations => _operations;

    /// <summary>Number of operations.</summary>
    public int Count => _operations.Count;

    /// <summary>Adds a route replace.</summary>
    public NetlinkBatch ReplaceRoute(RouteSpec route) => Add(NetlinkOperationKind.ReplaceRoute, route);

    /// <summary>Adds a route delete.</summary>
    public NetlinkBatch DeleteRoute(RouteSpec route) => Add(NetlinkOperationKind.DeleteRoute, route);

    /// <summary>Adds a neighbour replace.</summary>
    public NetlinkBatch ReplaceNeighbor(NeighborSpec neighbor) => Add(NetlinkOperationKind.ReplaceNeighbor, neighbor);

    /// <summary>Adds a neighbour delete.</summary>
    public NetlinkBatch DeleteNeighbor(NeighborSpec neighbor) => Add(NetlinkOperationKind.DeleteNeighbor, neighbor);

    /// <summary>Adds an FDB entry replace.</summary>
    public NetlinkBatch ReplaceFdbEntry(FdbEntrySpec entry) => Add(NetlinkOperationKind.ReplaceFdbEntry, entry);

    /// <summary>Adds an FDB entry delete.</summary>
    public NetlinkBatch DeleteFdbEntry(FdbEntrySpec entry) => Add(NetlinkOperationKind.DeleteFdbEntry, entry);

    /// <summary>Adds a nexthop replace.</summary>
    public NetlinkBatch ReplaceNexthop(NexthopSpec nexthop) => Add(NetlinkOperationKind.ReplaceNexthop, nexthop);

    /// <summary>Adds a nexthop delete.</summary>
    public NetlinkBatch DeleteNexthop(uint id) => Add(NetlinkOperationKind.DeleteNexthop, id);

    private NetlinkBatch Add(NetlinkOperationKind kind, object spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        _operations.Add(new NetlinkOperation(kind, spec));
        return this;
    }
}

/// <summary>The outcome of every operation of a batch, in the batch's order.</summary>
public sealed class NetlinkBatchResult
{
    private readonly NetlinkException?[] _errors;

    /// <summary>Creates a result from one entry per operation (null = succeeded).</summary>
    public NetlinkBatchResult(NetlinkException?[] errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        _errors = errors;
        foreach (NetlinkException? error in errors)
        {
            if (error is not null)
            {
                FailedCount++;
            }
        }
    }

    /// <summary>Number of operations.</summary>
    public int Count => _errors.Length;

    /// <summary>Number of operations that failed.</summary>
    public int FailedCount { get; }

    /// <summary>True when every operation succeeded.</summary>
    public bool AllSucceeded => FailedCount == 0;

    /// <summary>The error of operation <paramref name="index"/>, or null when it succeeded.</summary>
    public NetlinkException? this[int index] => _errors[index];

    /// <summary>The per-operation errors (null = succeeded).</summary>
    public IReadOnlyList<NetlinkException?> Errors => _errors;
}
