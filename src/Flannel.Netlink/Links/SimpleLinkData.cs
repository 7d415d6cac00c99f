using Flannel.Netlink.Interop;
using Flannel.Netlink.Protocol;

namespace Flannel.Netlink.Links;

/// <summary>The bridge kind: only <c>IFLA_INFO_KIND "bridge"</c> (kernel defaults for everything else).</summary>
internal static class BridgeLinkData
{
    public const string Kind = "bridge";

    public static void Write(ref NetlinkWriter writer) => writer.WriteAttributeString(LinkConstants.IFLA_INFO_KIND, Kind, nulTerminated: false);
}

/// <summary>The dummy kind: only <c>IFLA_INFO_KIND "dummy"</c>.</summary>
internal static class DummyLinkData
{
    public const string Kind = "dummy";

    public static void Write(ref NetlinkWriter writer) => writer.WriteAttributeString(LinkConstants.IFLA_INFO_KIND, Kind, nulTerminated: false);
}

/// <summary>The wireguard kind: only <c>IFLA_INFO_KIND "wireguard"</c>; keys and peers go over generic netlink.</summary>
internal static class WireGuardLinkData
{
    public const string Kind = "wireguard";

    public static void Write(ref NetlinkWriter writer) => writer.WriteAttributeString(LinkConstants.IFLA_INFO_KIND, Kind, nulTerminated: false);
}

/// <summary>
/// The veth kind: the peer is described by a whole second <c>ifinfomsg</c> nested in
/// <c>VETH_INFO_PEER</c>, optionally with <c>IFLA_NET_NS_FD</c> to create it directly in another namespace.
/// </summary>
/// <remarks>
/// <code>
/// IFLA_INFO_KIND "veth"
/// IFLA_INFO_DATA
///   VETH_INFO_PEER
///     struct ifinfomsg     16 bytes, all zero
///     IFLA_NET_NS_FD       u32 fd of the peer's namespace (only when given)
///     IFLA_IFNAME          peer name
/// </code>
/// </remarks>
internal static class VethLinkData
{
    public const string Kind = "veth";

    public static void Write(ref NetlinkWriter writer, string peerName, int peerNamespaceFd)
    {
        writer.WriteAttributeString(LinkConstants.IFLA_INFO_KIND, Kind, nulTerminated: false);
        NetlinkNestToken data = writer.BeginNested(LinkConstants.IFLA_INFO_DATA);
        NetlinkNestToken peer = writer.BeginNested(LinkConstants.VETH_INFO_PEER);
        writer.WriteIfInfoMsg(AddressFamilies.AF_UNSPEC, 0, 0, 0, 0);
        if (peerNamespaceFd >= 0)
        {
            // iproute2 (`… peer name vb netns NS`) sends the namespace before the name.
            writer.WriteAttributeUInt32(LinkConstants.IFLA_NET_NS_FD, (uint)peerNamespaceFd);
        }

        writer.WriteAttributeString(LinkConstants.IFLA_IFNAME, peerName);

        writer.EndNested(peer);
        writer.EndNested(data);
    }
}
