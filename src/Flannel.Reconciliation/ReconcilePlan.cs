namespace Flannel.Reconciliation;

/// <summary>What one step of a plan does to the kernel.</summary>
public enum RepairAction
{
    /// <summary>Creates a missing object.</summary>
    Added,

    /// <summary>Replaces an object whose content differs.</summary>
    Fixed,

    /// <summary>Deletes an object nobody wants any more.</summary>
    Deleted,
}

/// <summary>One step: an object and what to do to it.</summary>
/// <param name="Target">The desired object (add, fix) or the observed one (delete).</param>
/// <param name="Action">What to do.</param>
public readonly record struct PlannedStep(StateObject Target, RepairAction Action);

/// <summary>
/// The difference between a desired and an observed set of state objects, as an ordered list of steps.
/// </summary>
/// <remarks>
/// Order: every delete first, by <see cref="StateObjectKind.DeleteOrder"/> (routes, then nexthop objects, then
/// neighbours, then FDB entries, so nothing routes through an object being removed), then every create or replace
/// by <see cref="StateObjectKind.CreateOrder"/> (flannel's order for a peer: neighbour, FDB entry, nexthop object,
/// route last, so the kernel never resolves the gateway by ARP). Objects of one kind keep their input order.
/// Deleting first also matters for the FDB, which the kernel keys on the MAC alone: the stale
/// <c>MAC dst OLD</c> goes before <c>replace MAC dst NEW</c> so the delete cannot remove the new entry.
/// </remarks>
public sealed class ReconcilePlan
{
    private ReconcilePlan(List<PlannedStep> steps, Dictionary<string, IReadOnlyList<StateObject>> desiredByOwner)
    {
        Steps = steps;
        DesiredByOwner = desiredByOwner;
    }

    /// <summary>The steps, in the order they must be sent.</summary>
    public IReadOnlyList<PlannedStep> Steps { get; }

    /// <summary>Every desired object, grouped by owning peer (used to withdraw a peer that failed).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<StateObject>> DesiredByOwner { get; }

    /// <summary>True when the kernel already matches.</summary>
    public bool IsEmpty => Steps.Count == 0;

    /// <summary>
    /// Plans the steps that turn <paramref name="observed"/> into <paramref name="desired"/>. Observed objects
    /// are only the ones the caller owns; anything not in that set is never deleted.
    /// </summary>
    public static ReconcilePlan Create(IEnumerable<StateObject> desired, IEnumerable<StateObject> observed)
    {
        ArgumentNullException.ThrowIfNull(desired);
        ArgumentNullException.ThrowIfNull(observed);

        // Sized up front: a resync of 5,000 peers plans 15,000 objects, and growing the tables step by step would
        // allocate (and drop) a chain of ever larger arrays on every pass.
        var wanted = new Dictionary<StateObjectKey, StateObject>(desired.TryGetNonEnumeratedCount(out int desiredCount) ? desiredCount : 0);
        var desiredByOwner = new Dictionary<string, IReadOnlyList<StateObject>>(StringComparer.Ordinal);
        foreach (StateObject item in desired)
        {
            // Two peers wanting one key (two leases claiming one subnet) cannot both win; the first one does.
            if (wanted.TryAdd(item.Key, item) && item.Owner is { } owner)
            {
                if (!desiredByOwner.TryGetValue(owner, out IReadOnlyList<StateObject>? list))
                {
                    list = new List<StateObject>(capacity: 3); // a vxlan peer's neighbour, FDB entry and route
                    desiredByOwner.Add(owner, list);
                }

                ((List<StateObject>)list).Add(item);
            }
        }

        var present = new Dictionary<StateObjectKey, StateObject>(observed.TryGetNonEnumeratedCount(out int observedCount) ? observedCount : 0);
        var deletes = new List<StateObject>();
        foreach (StateObject item in observed)
        {
            if (!present.TryAdd(item.Key, item))
            {
                continue;
            }

            if (!wanted.ContainsKey(item.Key))
            {
                deletes.Add(item);
            }
        }

        var creates = new List<PlannedStep>();
        foreach (StateObject item in wanted.Values)
        {
            if (!present.TryGetValue(item.Key, out StateObject? existing))
            {
                creates.Add(new PlannedStep(item, RepairAction.Added));
            }
            else if (!item.Content.IsSatisfiedBy(existing.Content))
            {
                creates.Add(new PlannedStep(item, RepairAction.Fixed));
            }
        }

        // OrderBy is stable: objects of one kind keep their order.
        var steps = new List<PlannedStep>(deletes.Count + creates.Count);
        steps.AddRange(deletes.OrderBy(static item => item.Kind.DeleteOrder).Select(static item => new PlannedStep(item, RepairAction.Deleted)));
        steps.AddRange(creates.OrderBy(static step => step.Target.Kind.CreateOrder));
        return new ReconcilePlan(steps, desiredByOwner);
    }
}
