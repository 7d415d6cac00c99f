using Flannel.Netlink;

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
public readonly record struct PlannedStep(KernelObject Target, RepairAction Action)
{
    /// <summary>The operation to send: the object's delete for <see cref="RepairAction.Deleted"/>, else its replace.</summary>
    public NetlinkOperation Operation => Action == RepairAction.Deleted ? Target.Delete : Target.Replace;
}

/// <summary>
/// The difference between a desired and an observed set of kernel objects, as an ordered list of steps.
/// </summary>
/// <remarks>
/// Order: every delete first (routes, then nexthop objects, then neighbours, then FDB entries, so nothing
/// routes through an object being removed), then every create or replace in flannel's order for a peer
/// (neighbour, FDB entry, nexthop object, route last, so the kernel never resolves the gateway by ARP).
/// Deleting first also matters for the FDB, which the kernel keys on the MAC alone: the stale
/// <c>MAC dst OLD</c> goes before <c>replace MAC dst NEW</c> so the delete cannot remove the new entry.
/// </remarks>
public sealed class ReconcilePlan
{
    private static readonly KernelObjectKind[] s_deleteOrder =
        [KernelObjectKind.Route, KernelObjectKind.Nexthop, KernelObjectKind.Neighbor, KernelObjectKind.FdbEntry];

    private static readonly KernelObjectKind[] s_createOrder =
        [KernelObjectKind.Neighbor, KernelObjectKind.FdbEntry, KernelObjectKind.Nexthop, KernelObjectKind.Route];

    private ReconcilePlan(List<PlannedStep> steps, Dictionary<string, List<KernelObject>> desiredByOwner)
    {
        Steps = steps;
        DesiredByOwner = desiredByOwner;
    }

    /// <summary>The steps, in the order they must be sent.</summary>
    public IReadOnlyList<PlannedStep> Steps { get; }

    /// <summary>Every desired object, grouped by owning peer (used to withdraw a peer that failed).</summary>
    public IReadOnlyDictionary<string, List<KernelObject>> DesiredByOwner { get; }

    /// <summary>True when the kernel already matches.</summary>
    public bool IsEmpty => Steps.Count == 0;

    /// <summary>
    /// Plans the steps that turn <paramref name="observed"/> into <paramref name="desired"/>. Observed objects
    /// are only the ones the caller owns; anything not in that set is never deleted.
    /// </summary>
    public static ReconcilePlan Create(IEnumerable<KernelObject> desired, IEnumerable<KernelObject> observed)
    {
        ArgumentNullException.ThrowIfNull(desired);
        ArgumentNullException.ThrowIfNull(observed);

        var wanted = new Dictionary<KernelObjectKey, KernelObject>();
        var desiredByOwner = new Dictionary<string, List<KernelObject>>(StringComparer.Ordinal);
        foreach (KernelObject item in desired)
        {
            // Two peers wanting one key (two leases claiming one subnet) cannot both win; the first one does.
            if (wanted.TryAdd(item.Key, item) && item.Owner is { } owner)
            {
                if (!desiredByOwner.TryGetValue(owner, out List<KernelObject>? list))
                {
                    list = [];
                    desiredByOwner.Add(owner, list);
                }

                list.Add(item);
            }
        }

        var present = new Dictionary<KernelObjectKey, KernelObject>();
        var deletes = new List<KernelObject>();
        foreach (KernelObject item in observed)
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
        foreach (KernelObject item in wanted.Values)
        {
            if (!present.TryGetValue(item.Key, out KernelObject? existing))
            {
                creates.Add(new PlannedStep(item, RepairAction.Added));
            }
            else if (!item.Content.IsSatisfiedBy(existing.Content))
            {
                creates.Add(new PlannedStep(item, RepairAction.Fixed));
            }
        }

        var steps = new List<PlannedStep>(deletes.Count + creates.Count);
        foreach (KernelObjectKind kind in s_deleteOrder)
        {
            foreach (KernelObject item in deletes)
            {
                if (item.Kind == kind)
                {
                    steps.Add(new PlannedStep(item, RepairAction.Deleted));
                }
            }
        }

        foreach (KernelObjectKind kind in s_createOrder)
        {
            foreach (PlannedStep step in creates)
            {
                if (step.Target.Kind == kind)
                {
                    steps.Add(step);
                }
            }
        }

        return new ReconcilePlan(steps, desiredByOwner);
    }
}
