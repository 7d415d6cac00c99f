using System.Net;
using System.Net.Sockets;
using Flannel.Netlink;
using Microsoft.Extensions.Logging;

namespace Flannel.Backends.Vxlan;

/// <summary>
/// One vxlan device (<c>flannel.1</c> for IPv4 pods, <c>flannel-v6.1</c> for IPv6 pods): its wanted
/// configuration, its VtepMAC, and its current kernel index.
/// </summary>
internal sealed partial class VxlanDevice
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
    /// Reuses a compatible device or replaces an incompatible one (<see cref="VxlanCompatibility"/>, as flannel does),
    /// sets the MTU and MAC, then checks that the kernel kept the MAC: udev or systemd-networkd may rewrite it
    /// (flannel-io/flannel#1795), and peers would then send to a MAC that is not ours.
    /// </summary>
    public async ValueTask<LinkInfo> EnsureAsync(INetlink netlink, ILogger logger, CancellationToken cancellationToken)
    {
        LinkInfo? existing = await netlink.GetLinkAsync(Name, cancellationToken).ConfigureAwait(false);
        if (existing is not null && VxlanCompatibility.FindIncompatibility(Spec, existing) is string reason)
        {
            LogRecreatingIncompatible(logger, Name, reason);
            await netlink.DeleteLinkAsync(existing.Index, cancellationToken).ConfigureAwait(false);
            existing = null;
        }
        else if (existing is not null)
        {
            LogReusing(logger, Name, existing.Index);
        }

        LinkInfo link = existing is null
            ? await netlink.CreateVxlanLinkAsync(Spec, cancellationToken).ConfigureAwait(false)
            : await netlink.ConfigureLinkAsync(existing, Spec.Mtu, Spec.Address, cancellationToken).ConfigureAwait(false);
        Index = link.Index;
        LinkInfo reread = await netlink.GetLinkAsync(link.Index, cancellationToken).ConfigureAwait(false) ?? link;
        if (reread.Address != VtepMac)
        {
            throw new InvalidOperationException($"{Name}'s mac address wanted: {VtepMac}, but got: {reread.Address?.ToString() ?? "none"}");
        }

        return reread;
    }

    /// <summary>Puts this node's lease address (network address, /32 or /128) on the device and sets it up.</summary>
    public async ValueTask ConfigureAsync(INetlink netlink, IPNetwork ownSubnet, IPNetwork? clusterNetwork, ILogger logger, CancellationToken cancellationToken)
    {
        var address = new IPNetwork(ownSubnet.BaseAddress, HostPrefixLength);
        IPNetwork within = clusterNetwork ?? ownSubnet;
        foreach (AddressInfo stale in await netlink.EnsureAddressAsync(Index, address, within, cancellationToken).ConfigureAwait(false))
        {
            LogRemovedStaleAddress(logger, stale.Local, stale.Address.PrefixLength, Name, within, address);
        }

        await netlink.SetLinkUpAsync(Index, up: true, cancellationToken).ConfigureAwait(false);
    }

    [LoggerMessage(EventId = 6020, Level = LogLevel.Warning, Message = "vxlan: {Device} is incompatible ({Reason}); deleting and recreating it")]
    private static partial void LogRecreatingIncompatible(ILogger logger, string device, string reason);

    [LoggerMessage(EventId = 6021, Level = LogLevel.Debug, Message = "vxlan: reusing existing device {Device} (index {Index})")]
    private static partial void LogReusing(ILogger logger, string device, int index);

    [LoggerMessage(EventId = 6022, Level = LogLevel.Information, Message = "vxlan: removed address {Address}/{PrefixLength} from {Device}: it is inside {Within} and is not the wanted {Wanted}")]
    private static partial void LogRemovedStaleAddress(ILogger logger, IPAddress address, int prefixLength, string device, IPNetwork within, IPNetwork wanted);
}
