namespace Flannel.Subnets;

/// <summary>What happened to a remote lease.</summary>
public enum LeaseEventType
{
    /// <summary>The lease was created or its attributes changed.</summary>
    Added,

    /// <summary>The lease was deleted or expired. The event carries the last attributes seen.</summary>
    Removed,
}

/// <summary>One change to a remote node's lease.</summary>
/// <param name="Type">Added or removed.</param>
/// <param name="Lease">The lease; for a removal, the full attributes cached before it went away.</param>
public readonly record struct LeaseEvent(LeaseEventType Type, Lease Lease);

/// <summary>
/// One item of a store's lease watch: either a complete snapshot of the current leases (always the first
/// item, and again after the store had to re-list) or incremental events.
/// </summary>
public sealed record LeaseWatchResult
{
    private LeaseWatchResult(IReadOnlyList<Lease>? snapshot, IReadOnlyList<LeaseEvent> events)
    {
        Snapshot = snapshot;
        Events = events;
    }

    /// <summary>The full set of leases when this is a snapshot; otherwise <see langword="null"/>.</summary>
    public IReadOnlyList<Lease>? Snapshot { get; }

    /// <summary>The incremental events when this is not a snapshot; otherwise empty.</summary>
    public IReadOnlyList<LeaseEvent> Events { get; }

    /// <summary>True when this item is a snapshot.</summary>
    public bool IsSnapshot => Snapshot is not null;

    /// <summary>Creates a snapshot item.</summary>
    public static LeaseWatchResult FromSnapshot(IReadOnlyList<Lease> leases)
    {
        ArgumentNullException.ThrowIfNull(leases);
        return new LeaseWatchResult(leases, []);
    }

    /// <summary>Creates an item of incremental events.</summary>
    public static LeaseWatchResult FromEvents(IReadOnlyList<LeaseEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        return new LeaseWatchResult(null, events);
    }
}
