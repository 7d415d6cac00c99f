namespace Flannel.Subnets;

/// <summary>Why a remote lease is not programmed: the admission rule it broke and a message that names the values.</summary>
/// <param name="Rule">The rule, one of <see cref="LeaseRejection"/>'s constants or a backend's own (e.g. <c>vtep-mac</c>).</param>
/// <param name="Reason">What is wrong, quoting the offending value.</param>
public sealed record LeaseRejection(string Rule, string Reason)
{
    /// <summary>The lease's subnet (or IPv6 subnet) does not lie inside <c>Network</c> (<c>IPv6Network</c>).</summary>
    public const string OutsideNetwork = "outside-network";

    /// <summary>The lease's subnet overlaps this node's subnet or the subnet of a lease accepted earlier.</summary>
    public const string Overlap = "overlap";

    /// <summary>The lease's public IP is this node's own, which would point the tunnel at ourselves.</summary>
    public const string OwnPublicIP = "own-public-ip";
}

/// <summary>
/// A backend's own rules for the remote leases it can program, checked by the agent before a
/// lease reaches the backend (a network implements it beside <c>INetwork</c>). The vxlan backend, for example,
/// refuses a multicast VtepMAC and a VNI other than its own.
/// </summary>
public interface ILeaseAdmission
{
    /// <summary>
    /// Returns why <paramref name="lease"/> must not be programmed, or <see langword="null"/> to accept it. Leases of
    /// another backend type should be accepted here (the backend ignores them itself). Must not throw.
    /// </summary>
    LeaseRejection? Check(Lease lease);
}
