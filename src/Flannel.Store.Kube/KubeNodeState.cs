namespace Flannel.Store.Kube;

/// <summary>Where this node's lease stands, as the agent's readiness should show it.</summary>
public enum KubeNodeState
{
    /// <summary>The lease has not been asked for yet.</summary>
    Starting,

    /// <summary>The Node object named by NODE_NAME (or the pod's spec.nodeName) does not exist (yet, or any more).</summary>
    WaitingForNode,

    /// <summary>
    /// The node has no <c>spec.podCIDR</c>: kube-controller-manager has not assigned one (is
    /// <c>--allocate-node-cidrs</c> on, with a <c>--cluster-cidr</c> matching net-conf.json?). flannel exits
    /// here; Flannel.NET waits and watches the node.
    /// </summary>
    WaitingForPodCidr,

    /// <summary>
    /// The lease cannot be used or published: the podCIDR lies outside the network or there are three or more, or the
    /// API server kept refusing the node patch; see the detail. While keeping the lease the store goes on watching the
    /// node and recovers by itself once the cause is fixed.
    /// </summary>
    Misconfigured,

    /// <summary>The lease is held and the node's annotations are published.</summary>
    Ready,
}

/// <summary>Raised when <see cref="KubeSubnetStore.State"/> changes.</summary>
public sealed class KubeNodeStateChangedEventArgs(KubeNodeState state, string detail) : EventArgs
{
    /// <summary>The new state.</summary>
    public KubeNodeState State { get; } = state;

    /// <summary>A one-line explanation fit for a readiness endpoint.</summary>
    public string Detail { get; } = detail;
}
