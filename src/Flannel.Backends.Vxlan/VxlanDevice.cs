using System.Net;
using System.Net.Sockets;
using Flannel.Netlink;

namespace Flannel.Backends.Vxlan;

/// <summary>
/// One vxlan device (<c>flannel.1</c> for IPv4 pods, <c>flannel-v6.1</c> for IPv6 pods): its wanted
/// configuration, its VtepMAC, and its current kernel index.
/// </summary>
internal sealed class VxlanDevice
{
    /// <summary>Bytes VXLAN adds over an IPv4 underlay: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14.</summary>
    public const int IPv4Overhead = 50;

    /// <summary>Bytes VXLAN adds over an IPv6 underlay (the outer IPv6 header is 40 bytes).</summary>
    public const int IPv6Overhead = 70;

    public VxlanDevice(AddressFamily family, uint vni, VxlanLinkSpec spec, MacAddress vtepMac)
    {
        Family = family;
        Vni = vni;
        Spec = spec with { Address = vtepMac };
    }

    /// <summary>The pod address family this device carries.</summary>
    public AddressFamily Family { get; }

    public uint Vni { get; }

    /// <summary>The full wanted spec, MAC and MTU included.</summary>
    public VxlanLinkSpec Spec { get; }

    public string Name => Spec.Name;

    public MacAddress VtepMac => Spec.Address!.Value;

    public int Mtu => Spec.Mtu!.Value;

    /// <summary>The kernel index; changes when the device is recreated.</summary>
    public int Index { get; private set; }

    /// <summary>The host-route prefix length of this family (32 or 128).</summary>
    public int HostPrefixLength => Family == AddressFamily.InterNetwork ? 32 : 128;

    /// <summary>flannel's device name: <c>flannel.&lt;VNI&gt;</c>, or <c>flannel-v6.&lt;VNI&gt;</c> for IPv6 pods.</summary>
    public static string NameFor(AddressFamily family, uint vni) =>
        family == AddressFamily.InterNetwork ? $"flannel.{vni}" : $"flannel-v6.{vni}";

    /// <summary>The encapsulation overhead for an underlay of the local address's family.</summary>
    public static int OverheadFor(IPAddress local) =>
        local.AddressFamily == AddressFamily.InterNetworkV6 ? IPv6Overhead : IPv4Overhead;

    /// <summary>
    /// Creates or reuses the device (INetlink replaces an incompatible one), then checks that the kernel kept
    /// the MAC: udev or systemd-networkd may rewrite it (flannel-io/flannel#1795), and peers would then send
    /// to a MAC that is not ours.
    /// </summary>
    public async ValueTask<LinkInfo> EnsureAsync(INetlink netlink, CancellationToken cancellationToken)
    {
        LinkInfo link = await netlink.EnsureVxlanLinkAsync(Spec, cancellationToken).ConfigureAwait(false);
        Index = link.Index;
        LinkInfo reread = await netlink.GetLinkAsync(link.Index, cancellationToken).ConfigureAwait(false) ?? link;
        if (reread.Address != VtepMac)
        {
            throw new InvalidOperationException($"{Name}'s mac address wanted: {VtepMac}, but got: {reread.Address?.ToString() ?? "none"}");
        }

        return reread;
    }

    /// <summary>Puts this node's lease address (network address, /32 or /128) on the device and sets it up.</summary>
    public async ValueTask ConfigureAsync(INetlink netlink, IPNetwork ownSubnet, IPNetwork? clusterNetwork, CancellationToken cancellationToken)
    {
        var address = new IPNetwork(ownSubnet.BaseAddress, HostPrefixLength);
        await netlink.EnsureAddressAsync(Index, address, clusterNetwork ?? ownSubnet, cancellationToken).ConfigureAwait(false);
        await netlink.SetLinkUpAsync(Index, up: true, cancellationToken).ConfigureAwait(false);
    }
}
