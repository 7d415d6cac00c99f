using Flannel.Netlink;

namespace Flannel.Backends.Vxlan;

/// <summary>
/// The VXLAN backend's policy for an existing device (netlink only creates and deletes): flannel's rule for reusing it (pkg/backend/vxlan/device.go, vxlanLinksIncompat): same
/// kind and VNI; where both sides set them, the same underlay link, local address, group and port; the same
/// L2miss and GBP. MTU, MAC and learning are not compared (they are set afterwards or left alone).
/// </summary>
internal static class VxlanCompatibility
{
    /// <summary>Why <paramref name="existing"/> cannot serve as <paramref name="wanted"/>, or null if it can.</summary>
    public static string? FindIncompatibility(VxlanLinkSpec wanted, LinkInfo existing)
    {
        if (existing.Kind != "vxlan" || existing.Vxlan is not VxlanInfo have)
        {
            return $"link type: {existing.Kind ?? "none"} instead of vxlan";
        }

        if (have.Vni != wanted.Vni)
        {
            return $"vni: {have.Vni} instead of {wanted.Vni}";
        }

        if (wanted.UnderlayIndex is int underlay && underlay > 0 && have.UnderlayIndex is int haveUnderlay && haveUnderlay > 0 && underlay != haveUnderlay)
        {
            return $"vtep (external) interface: {haveUnderlay} instead of {underlay}";
        }

        if (wanted.Local is not null && have.Local is not null && !wanted.Local.Equals(have.Local))
        {
            return $"vtep (external) IP: {have.Local} instead of {wanted.Local}";
        }

        if (have.L2Miss)
        {
            return "l2miss: on instead of off";
        }

        if (wanted.Port > 0 && have.Port > 0 && wanted.Port != have.Port)
        {
            return $"port: {have.Port} instead of {wanted.Port}";
        }

        if (wanted.Gbp != have.Gbp)
        {
            return $"gbp: {(have.Gbp ? "on" : "off")} instead of {(wanted.Gbp ? "on" : "off")}";
        }

        return null;
    }
}
