namespace Flannel.Subnets;

/// <summary>
/// Optionally implemented by an <see cref="Subnets.ISubnetStore"/> that knows more about its own health than its
/// streams show: its watch is reconnecting, or (Kubernetes) the node has no podCIDR yet. The agent folds the
/// reason into readiness, so <c>/readyz</c> falls back while it is set.
/// </summary>
public interface ISubnetStoreStatus
{
    /// <summary>Why the store cannot serve this node right now, e.g. <c>node "n1" has no podCIDR yet</c>; null when healthy.</summary>
    string? NotReadyReason { get; }
}
