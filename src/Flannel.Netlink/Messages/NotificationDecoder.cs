using Flannel.Netlink.Interop;
using Flannel.Netlink.Protocol;

namespace Flannel.Netlink.Messages;

/// <summary>Turns multicast datagrams (RTM_NEW*/RTM_DEL* of links, routes, addresses, neighbours) into notifications.</summary>
internal static class NotificationDecoder
{
    /// <summary>
    /// Appends one notification per understood message. A message whose payload is malformed is skipped (the
    /// watcher keeps running); a broken message header ends the datagram.
    /// </summary>
    public static void Decode(ReadOnlySpan<byte> datagram, List<NetlinkNotification> output)
    {
        var reader = new NetlinkMessageReader(datagram);
        try
        {
            while (reader.TryRead(out NetlinkMessage message))
            {
                if (message.Type == NetlinkHeader.NLMSG_OVERRUN)
                {
                    output.Add(new NetlinkNotification { Kind = NetlinkNotificationKind.Overrun });
                    continue;
                }

                try
                {
                    if (DecodeOne(message) is NetlinkNotification notification)
                    {
                        output.Add(notification);
                    }
                }
                catch (NetlinkProtocolException)
                {
                    // One bad object never stops the watcher; the next reconcile sees the truth anyway.
                }
            }
        }
        catch (NetlinkProtocolException)
        {
            // The rest of this datagram cannot be framed.
        }
    }

    private static NetlinkNotification? DecodeOne(in NetlinkMessage message) => message.Type switch
    {
        RtnetlinkConstants.RTM_NEWLINK => new NetlinkNotification { Kind = NetlinkNotificationKind.LinkAddedOrChanged, Link = LinkMessages.Read(message.Payload) },
        RtnetlinkConstants.RTM_DELLINK => new NetlinkNotification { Kind = NetlinkNotificationKind.LinkDeleted, Link = LinkMessages.Read(message.Payload) },
        RtnetlinkConstants.RTM_NEWROUTE => new NetlinkNotification { Kind = NetlinkNotificationKind.RouteAdded, Route = RouteMessages.Read(message.Payload) },
        RtnetlinkConstants.RTM_DELROUTE => new NetlinkNotification { Kind = NetlinkNotificationKind.RouteDeleted, Route = RouteMessages.Read(message.Payload) },
        RtnetlinkConstants.RTM_NEWADDR => new NetlinkNotification { Kind = NetlinkNotificationKind.AddressAdded, Address = AddressMessages.Read(message.Payload) },
        RtnetlinkConstants.RTM_DELADDR => new NetlinkNotification { Kind = NetlinkNotificationKind.AddressDeleted, Address = AddressMessages.Read(message.Payload) },
        RtnetlinkConstants.RTM_NEWNEIGH or RtnetlinkConstants.RTM_DELNEIGH => DecodeNeighbor(message),
        _ => null,
    };

    private static NetlinkNotification? DecodeNeighbor(in NetlinkMessage message)
    {
        // FDB entries (AF_BRIDGE) have no IP address to report as a neighbour.
        if (NeighborMessages.ReadFamily(message.Payload) is not (AddressFamilies.AF_INET or AddressFamilies.AF_INET6)
            || NeighborMessages.ReadNeighbor(message.Payload) is not NeighborInfo neighbor)
        {
            return null;
        }

        return new NetlinkNotification
        {
            Kind = message.Type == RtnetlinkConstants.RTM_NEWNEIGH ? NetlinkNotificationKind.NeighborAdded : NetlinkNotificationKind.NeighborDeleted,
            Neighbor = neighbor,
        };
    }
}
