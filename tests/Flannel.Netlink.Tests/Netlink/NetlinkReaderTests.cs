using System.Net;
using System.Net.Sockets;
using Flannel.Netlink;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Messages;
using Flannel.Netlink.Protocol;

namespace Flannel.Netlink.Tests;

public sealed class NetlinkReaderTests
{
    [Fact]
    public void Incomplete_input_returns_false_and_leaves_the_bytes()
    {
        byte[] message = Encode((ref NetlinkWriter w) => RouteMessages.WriteReplace(ref w, GoldenVectorTests.FlannelRoute(), 1));
        for (int cut = 0; cut < message.Length; cut++)
        {
            var reader = new NetlinkMessageReader(message.AsSpan(0, cut));
            Assert.False(reader.TryRead(out _));
            Assert.Equal(cut, reader.Remaining);
        }
    }

    [Fact]
    public void A_length_below_the_header_is_malformed()
    {
        byte[] message = new byte[16];
        BitConverter.TryWriteBytes(message, 15u);
        Assert.Throws<NetlinkProtocolException>(() => new NetlinkMessageReader(message).TryRead(out _));
    }

    [Fact]
    public void An_attribute_running_past_its_message_is_malformed()
    {
        byte[] attributes = [8, 0, 1, 0, 1, 2, 3, 4, 12, 0, 2, 0, 1, 2];
        Assert.Throws<NetlinkProtocolException>(() =>
        {
            var reader = new NetlinkAttributeReader(attributes);
            while (reader.TryRead(out _))
            {
            }
        });
    }

    [Fact]
    public void A_multipart_dump_is_read_until_done_with_dump_interrupted_seen()
    {
        byte[] dump = Encode((ref NetlinkWriter w) =>
        {
            for (uint i = 0; i < 3; i++)
            {
                NetlinkMessageToken m = w.BeginMessage(RtnetlinkConstants.RTM_NEWROUTE, (ushort)(NetlinkHeader.NLM_F_MULTI | (i == 1 ? NetlinkHeader.NLM_F_DUMP_INTR : 0)), 9);
                w.WriteRtMsg(AddressFamilies.AF_INET, 24, 0, 0, 254, 3, 0, 1, 4);
                w.WriteAttributeAddress(RtnetlinkConstants.RTA_DST, IPAddress.Parse($"10.244.{i}.0"));
                w.WriteAttributeUInt32(RtnetlinkConstants.RTA_OIF, 4);
                w.EndMessage(m);
            }

            NetlinkMessageToken done = w.BeginMessage(NetlinkHeader.NLMSG_DONE, NetlinkHeader.NLM_F_MULTI, 9);
            w.WriteAttribute(0, []); // any payload; DONE carries an int 0 in practice
            w.EndMessage(done);
        });

        var reader = new NetlinkMessageReader(dump);
        var routes = new List<RouteInfo>();
        bool interrupted = false, done = false;
        while (reader.TryRead(out NetlinkMessage message))
        {
            Assert.True(message.IsMultipart);
            interrupted |= message.IsDumpInterrupted;
            if (message.IsDone)
            {
                done = true;
                break;
            }

            routes.Add(RouteMessages.Read(message.Payload));
        }

        Assert.True(done);
        Assert.True(interrupted);
        Assert.Equal(["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"], routes.Select(r => r.Destination.ToString()));
        Assert.All(routes, r => Assert.True(r.OnLink));
    }

    [Fact]
    public void An_error_with_extended_ack_is_decoded()
    {
        byte[] request = Encode((ref NetlinkWriter w) => RouteMessages.WriteReplace(ref w, GoldenVectorTests.FlannelRoute(), 42));
        byte[] error = ScriptedNetlinkSocket.Error(request, Errno.ENODEV, "Nexthop device is not up", 40, capped: false);
        var reader = new NetlinkMessageReader(error);
        Assert.True(reader.TryRead(out NetlinkMessage message));
        Assert.True(message.IsError);
        NetlinkError parsed = NetlinkError.Parse(message);
        Assert.Equal(Errno.ENODEV, parsed.Errno);
        Assert.Equal(42u, parsed.Sequence);
        Assert.Equal("Nexthop device is not up", parsed.AckMessage);
        Assert.Equal(40u, parsed.AckOffset);

        byte[] capped = ScriptedNetlinkSocket.Error(request, Errno.EEXIST, "exists", null, capped: true);
        var cappedReader = new NetlinkMessageReader(capped);
        Assert.True(cappedReader.TryRead(out NetlinkMessage cappedMessage));
        NetlinkError cappedError = NetlinkError.Parse(cappedMessage);
        Assert.Equal(Errno.EEXIST, cappedError.Errno);
        Assert.Equal("exists", cappedError.AckMessage);
        Assert.Null(cappedError.AckOffset);
    }

    [Fact]
    public void Route_neighbour_fdb_nexthop_address_and_link_round_trip()
    {
        var mac = MacAddress.Parse("0a:58:0a:f4:01:02");
        RouteInfo route = RouteMessages.Read(Payload((ref NetlinkWriter w) => RouteMessages.WriteReplace(ref w, new RouteSpec { Destination = IPNetwork.Parse("fd00:1::/64"), Gateway = IPAddress.Parse("fd00:1::"), LinkIndex = 9, OnLink = true, Table = 1000, Protocol = 70 }, 1)));
        Assert.Equal(IPNetwork.Parse("fd00:1::/64"), route.Destination);
        Assert.Equal(IPAddress.Parse("fd00:1::"), route.Gateway);
        Assert.Equal(9, route.LinkIndex);
        Assert.Equal(1000u, route.Table);
        Assert.Equal(70, route.Protocol);
        Assert.True(route.OnLink);

        RouteInfo defaultRoute = RouteMessages.Read(Payload((ref NetlinkWriter w) => RouteMessages.WriteReplace(ref w, new RouteSpec { Destination = IPNetwork.Parse("0.0.0.0/0"), Gateway = IPAddress.Parse("198.18.0.254") }, 1)));
        Assert.Equal(IPNetwork.Parse("0.0.0.0/0"), defaultRoute.Destination);

        NeighborInfo? neighbor = NeighborMessages.ReadNeighbor(Payload((ref NetlinkWriter w) => NeighborMessages.WriteReplace(ref w, new NeighborSpec { LinkIndex = 4, Address = IPAddress.Parse("10.244.1.0"), LinkLayerAddress = mac }, 1)));
        Assert.NotNull(neighbor);
        Assert.Equal(IPAddress.Parse("10.244.1.0"), neighbor.Address);
        Assert.Equal(mac, neighbor.LinkLayerAddress);
        Assert.True(neighbor.IsPermanent);

        FdbEntryInfo? fdb = NeighborMessages.ReadFdbEntry(Payload((ref NetlinkWriter w) => NeighborMessages.WriteReplaceFdb(ref w, new FdbEntrySpec { LinkIndex = 4, MacAddress = mac, Destination = IPAddress.Parse("198.18.0.2") }, 1)));
        Assert.NotNull(fdb);
        Assert.Equal(mac, fdb.MacAddress);
        Assert.Equal(IPAddress.Parse("198.18.0.2"), fdb.Destination);
        Assert.Equal(NeighborFlags.Self, fdb.Flags);
        Assert.True(fdb.IsPermanent);

        NexthopInfo nexthop = NexthopMessages.Read(Payload((ref NetlinkWriter w) => NexthopMessages.WriteReplace(ref w, new NexthopSpec { Id = 5, Gateway = IPAddress.Parse("10.244.1.0"), LinkIndex = 4, OnLink = true }, 1)));
        Assert.Equal(5u, nexthop.Id);
        Assert.Equal(IPAddress.Parse("10.244.1.0"), nexthop.Gateway);
        Assert.Equal(RouteDefaults.ProtocolFlannel, nexthop.Protocol);
        Assert.True(nexthop.OnLink);

        AddressInfo address = AddressMessages.Read(Payload((ref NetlinkWriter w) => AddressMessages.WriteAdd(ref w, 4, IPNetwork.Parse("10.244.0.0/32"), 1)));
        Assert.Equal(IPNetwork.Parse("10.244.0.0/32"), address.Address);
        Assert.Equal(AddressFamily.InterNetwork, address.Local.AddressFamily);

        LinkInfo link = LinkMessages.Read(Payload((ref NetlinkWriter w) => LinkMessages.WriteCreateVxlan(ref w, new VxlanLinkSpec { Name = "flannel.1", Vni = 1, Local = IPAddress.Parse("198.18.0.1"), UnderlayIndex = 3, Port = 8472, Gbp = true }, 1)));
        Assert.Equal("flannel.1", link.Name);
        Assert.Equal("vxlan", link.Kind);
        Assert.NotNull(link.Vxlan);
        Assert.Equal(1u, link.Vxlan.Vni);
        Assert.Equal(IPAddress.Parse("198.18.0.1"), link.Vxlan.Local);
        Assert.Equal(3, link.Vxlan.UnderlayIndex);
        Assert.Equal(8472, link.Vxlan.Port);
        Assert.True(link.Vxlan.Gbp);
        Assert.False(link.Vxlan.Learning);
    }

    [Fact]
    public void Random_and_corrupted_input_only_ever_throws_NetlinkProtocolException()
    {
        var random = new Random(20261127);
        byte[][] seeds =
        [
            Encode((ref NetlinkWriter w) => LinkMessages.WriteCreateVxlan(ref w, new VxlanLinkSpec { Name = "flannel.1", Vni = 1, Local = IPAddress.Parse("198.18.0.1"), UnderlayIndex = 3 }, 1)),
            Encode((ref NetlinkWriter w) => RouteMessages.WriteReplace(ref w, GoldenVectorTests.FlannelRoute(), 2)),
            Encode((ref NetlinkWriter w) => NeighborMessages.WriteReplaceFdb(ref w, new FdbEntrySpec { LinkIndex = 4, MacAddress = MacAddress.Parse("0a:58:0a:f4:01:02"), Destination = IPAddress.Parse("198.18.0.2") }, 3)),
            Encode((ref NetlinkWriter w) => AddressMessages.WriteAdd(ref w, 4, IPNetwork.Parse("fd00::/128"), 4)),
            Encode((ref NetlinkWriter w) => NexthopMessages.WriteReplace(ref w, new NexthopSpec { Id = 9, Gateway = IPAddress.Parse("10.0.0.1"), LinkIndex = 2 }, 5)),
            ScriptedNetlinkSocket.Error(Encode((ref NetlinkWriter w) => RouteMessages.WriteDelete(ref w, GoldenVectorTests.FlannelRoute(), 6)), Errno.ENOENT, "No such route", 20, capped: false),
        ];
        int cases = 0, protocolErrors = 0;
        for (int i = 0; i < 20000; i++)
        {
            byte[] input;
            if (i % 4 == 0)
            {
                input = new byte[random.Next(0, 200)];
                random.NextBytes(input);
            }
            else
            {
                input = (byte[])seeds[random.Next(seeds.Length)].Clone();
                int flips = random.Next(1, 6);
                for (int f = 0; f < flips && input.Length > 0; f++)
                {
                    input[random.Next(input.Length)] = (byte)random.Next(256);
                }

                if (random.Next(4) == 0)
                {
                    input = input.AsSpan(0, random.Next(input.Length + 1)).ToArray();
                }
            }

            try
            {
                DecodeEverything(input);
            }
            catch (NetlinkProtocolException)
            {
                protocolErrors++;
            }

            cases++;
        }

        Assert.Equal(20000, cases);
        Assert.InRange(protocolErrors, 1, cases - 1); // corruption is detected, and not everything is rejected
    }

    /// <summary>Feeds every decoder the payload, as RtNetlink and the notification decoder would.</summary>
    private static void DecodeEverything(byte[] input)
    {
        var notifications = new List<NetlinkNotification>();
        NotificationDecoder.Decode(input, notifications);
        var reader = new NetlinkMessageReader(input);
        while (reader.TryRead(out NetlinkMessage message))
        {
            ReadOnlySpan<byte> p = message.Payload;
            switch (message.Type % 7)
            {
                case 0: LinkMessages.Read(p); break;
                case 1: RouteMessages.Read(p); break;
                case 2: AddressMessages.Read(p); break;
                case 3: NeighborMessages.ReadNeighbor(p); NeighborMessages.ReadFdbEntry(p); break;
                case 4: NexthopMessages.Read(p); break;
                case 5: NetlinkError.Parse(message); break;
                default: NetlinkError.ParseDone(message); break;
            }
        }
    }

    internal delegate void Encoder(ref NetlinkWriter writer);

    internal static byte[] Encode(Encoder encode)
    {
        var output = new System.Buffers.ArrayBufferWriter<byte>();
        var writer = new NetlinkWriter(output);
        encode(ref writer);
        writer.Flush();
        return output.WrittenSpan.ToArray();
    }

    private static byte[] Payload(Encoder encode) => Encode(encode)[16..];
}
