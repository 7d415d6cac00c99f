using System.Net;
using Flannel.Netlink;

namespace Flannel.Backends.Vxlan.Tests;

/// <summary>The backend's device reuse policy (flannel's vxlanLinksIncompat).</summary>
public sealed class VxlanCompatibilityTests
{
    [Fact]
    public void An_existing_compatible_vxlan_device_is_reused_and_an_incompatible_one_replaced()
    {
        var existing = new LinkInfo { Index = 7, Name = "flannel.1", Kind = "vxlan", Vxlan = new VxlanInfo { Vni = 1, Local = IPAddress.Parse("198.18.0.1"), UnderlayIndex = 3, Port = 8472 } };
        var wanted = new VxlanLinkSpec { Name = "flannel.1", Vni = 1, Local = IPAddress.Parse("198.18.0.1"), UnderlayIndex = 3, Learning = true };
        Assert.Null(VxlanCompatibility.FindIncompatibility(wanted, existing)); // learning is not compared
        Assert.Equal("vni: 1 instead of 2", VxlanCompatibility.FindIncompatibility(wanted with { Vni = 2 }, existing));
        Assert.StartsWith("vtep (external) IP", VxlanCompatibility.FindIncompatibility(wanted with { Local = IPAddress.Parse("198.18.0.9") }, existing), StringComparison.Ordinal);
        Assert.StartsWith("port", VxlanCompatibility.FindIncompatibility(wanted with { Port = 4789 }, existing), StringComparison.Ordinal);
        Assert.Null(VxlanCompatibility.FindIncompatibility(wanted with { UnderlayIndex = null }, existing));
        Assert.StartsWith("gbp", VxlanCompatibility.FindIncompatibility(wanted with { Gbp = true }, existing), StringComparison.Ordinal);
        Assert.StartsWith("link type", VxlanCompatibility.FindIncompatibility(wanted, existing with { Kind = "bridge", Vxlan = null }), StringComparison.Ordinal);
    }
}
