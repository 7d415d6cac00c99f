namespace Flannel.Backends.Vxlan;

/// <summary>How the route to each remote subnet is expressed.</summary>
public enum VxlanRouteMode
{
    /// <summary>
    /// flannel's form: <c>10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink</c>, one self-contained route per peer.
    /// </summary>
    Classic,

    /// <summary>
    /// One nexthop object per peer (<c>ip nexthop add id N via 10.244.2.0 dev flannel.1 onlink</c>) and a route
    /// <c>10.244.2.0/24 nhid N</c>. The kernel validates the gateway once per nexthop instead of once per route,
    /// which makes large initial programming faster; needs Linux 5.3 or later.
    /// </summary>
    NexthopObjects,
}

/// <summary>
/// Host-side options of the VXLAN backend (the cluster-wide ones, VNI, Port, MTU, GBP, Learning and
/// DirectRouting, come from the <c>Backend</c> object of net-conf.json).
/// </summary>
public sealed class VxlanBackendOptions
{
    /// <summary>How often the kernel state is compared with the desired state and repaired. Default 10 s.</summary>
    [PositiveDuration]
    public TimeSpan ResyncInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How remote routes are expressed. Default <see cref="VxlanRouteMode.Classic"/>, flannel's form.</summary>
    public VxlanRouteMode RouteMode { get; set; } = VxlanRouteMode.Classic;
}
