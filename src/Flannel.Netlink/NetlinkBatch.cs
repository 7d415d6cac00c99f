namespace Flannel.Netlink;

/// <summary>
/// Operations to send together with <see cref="INetlink.ApplyAsync"/>. Operations are applied in order; the kernel
/// processes each independently (one failing never stops the next), so ordering only matters between operations
/// that depend on each other (neighbour, then FDB entry, then route, as flannel programs a peer).
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

    /// <summary>Adds an operation.</summary>
    public NetlinkBatch Add(NetlinkOperation operation)
    {
        ArgumentNullException.ThrowIfNull(operation);
        _operations.Add(operation);
        return this;
    }

    /// <summary>Adds a route replace.</summary>
    public NetlinkBatch ReplaceRoute(RouteSpec route) => Add(new RouteReplace(route));

    /// <summary>Adds a route delete.</summary>
    public NetlinkBatch DeleteRoute(RouteSpec route) => Add(new RouteDelete(route));

    /// <summary>Adds a neighbour replace.</summary>
    public NetlinkBatch ReplaceNeighbor(NeighborSpec neighbor) => Add(new NeighborReplace(neighbor));

    /// <summary>Adds a neighbour delete.</summary>
    public NetlinkBatch DeleteNeighbor(NeighborSpec neighbor) => Add(new NeighborDelete(neighbor));

    /// <summary>Adds an FDB entry replace.</summary>
    public NetlinkBatch ReplaceFdbEntry(FdbEntrySpec entry) => Add(new FdbEntryReplace(entry));

    /// <summary>Adds an FDB entry delete.</summary>
    public NetlinkBatch DeleteFdbEntry(FdbEntrySpec entry) => Add(new FdbEntryDelete(entry));

    /// <summary>Adds a nexthop replace.</summary>
    public NetlinkBatch ReplaceNexthop(NexthopSpec nexthop) => Add(new NexthopReplace(nexthop));

    /// <summary>Adds a nexthop delete.</summary>
    public NetlinkBatch DeleteNexthop(uint id) => Add(new NexthopDelete(id));
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
