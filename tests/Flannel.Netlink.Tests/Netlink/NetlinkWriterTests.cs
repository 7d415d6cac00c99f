using System.Buffers;
using System.Net;
using Flannel.Netlink;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Messages;
using Flannel.Netlink.Protocol;

namespace Flannel.Netlink.Tests;

public sealed class NetlinkWriterTests
{
    [Fact]
    public void Lengths_are_back_filled_and_attributes_padded_to_four_bytes()
    {
        Span<byte> buffer = stackalloc byte[128];
        var writer = new NetlinkWriter(buffer);
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_NEWLINK, 0x0605, 7);
        writer.WriteIfInfoMsg(0, 0, 0, 0, 0);
        NetlinkNestToken nest = writer.BeginNested(LinkConstants.IFLA_LINKINFO);
        writer.WriteAttributeString(LinkConstants.IFLA_INFO_KIND, "dummy", nulTerminated: false); // 5 bytes + 3 padding
        writer.EndNested(nest);
        writer.WriteAttributeUInt8(5, 0xAB);
        writer.EndMessage(message);

        byte[] bytes = writer.WrittenSpan.ToArray();
        Assert.Equal(16 + 16 + 16 + 8, bytes.Length);
        Assert.Equal((uint)bytes.Length, BitConverter.ToUInt32(bytes, 0));
        Assert.Equal(16, BitConverter.ToUInt16(bytes, 32));      // nest length includes the inner padding
        Assert.Equal(9, BitConverter.ToUInt16(bytes, 36));       // nla_len excludes padding
        Assert.Equal([0, 0, 0], bytes[45..48]);                  // zeroed padding
        Assert.Equal(5, BitConverter.ToUInt16(bytes, 48));
        Assert.Equal(0xAB, bytes[52]);
        Assert.Equal(1, writer.MessageCount);
    }

    [Fact]
    public void The_vxlan_port_is_big_endian_and_u32_attributes_are_host_order()
    {
        Span<byte> buffer = stackalloc byte[64];
        var writer = new NetlinkWriter(buffer);
        NetlinkMessageToken message = writer.BeginMessage(16, 0, 1);
        writer.WriteAttributeUInt16BigEndian(LinkConstants.IFLA_VXLAN_PORT, 8472);
        writer.WriteAttributeUInt32(LinkConstants.IFLA_VXLAN_ID, 0x01020304);
        writer.EndMessage(message);
        ReadOnlySpan<byte> bytes = writer.WrittenSpan;
        Assert.Equal([0x21, 0x18], bytes[20..22].ToArray());
        Assert.Equal([0x04, 0x03, 0x02, 0x01], bytes[28..32].ToArray());
    }

    [Fact]
    public void Crossed_nest_tokens_throw()
    {
        byte[] buffer = new byte[128];
        InvalidOperationException e = Assert.Throws<InvalidOperationException>(() =>
        {
            var w = new NetlinkWriter(buffer);
            w.BeginMessage(16, 0, 1);
            NetlinkNestToken o = w.BeginNested(1);
            w.BeginNested(2);
            w.EndNested(o);
        });
        Assert.Contains("innermost", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Ending_a_message_with_an_open_nest_throws()
    {
        byte[] buffer = new byte[128];
        Assert.Throws<InvalidOperationException>(() =>
        {
            var w = new NetlinkWriter(buffer);
            NetlinkMessageToken m = w.BeginMessage(16, 0, 1);
            w.BeginNested(1);
            w.EndMessage(m);
        });
    }

    [Fact]
    public void Ending_a_nest_twice_throws()
    {
        byte[] buffer = new byte[128];
        Assert.Throws<InvalidOperationException>(() =>
        {
            var w = new NetlinkWriter(buffer);
            w.BeginMessage(16, 0, 1);
            NetlinkNestToken n = w.BeginNested(1);
            w.EndNested(n);
            w.EndNested(n);
        });
    }

    [Fact]
    public void A_token_from_another_message_is_rejected()
    {
        byte[] buffer = new byte[128];
        Assert.Throws<InvalidOperationException>(() =>
        {
            var w = new NetlinkWriter(buffer);
            NetlinkMessageToken first = w.BeginMessage(16, 0, 1);
            w.EndMessage(first);
            w.BeginMessage(16, 0, 2);
            w.EndMessage(first);
        });
    }

    [Fact]
    public void Attributes_outside_a_message_and_nested_begins_throw()
    {
        byte[] buffer = new byte[128];
        Assert.Throws<InvalidOperationException>(() =>
        {
            var w = new NetlinkWriter(buffer);
            w.WriteAttributeUInt32(1, 1);
        });
        Assert.Throws<InvalidOperationException>(() =>
        {
            var w = new NetlinkWriter(buffer);
            w.BeginMessage(16, 0, 1);
            w.BeginMessage(16, 0, 2);
        });
    }

    [Fact]
    public void A_full_span_throws_instead_of_writing_past_it()
    {
        byte[] buffer = new byte[40];
        Assert.Throws<InvalidOperationException>(() =>
        {
            var w = new NetlinkWriter(buffer);
            RouteMessages.WriteReplace(ref w, GoldenVectorTests.FlannelRoute(), 1);
        });
    }

    [Fact]
    public void A_buffer_writer_grows_and_keeps_an_open_message_contiguous()
    {
        // A tiny first segment forces growth in the middle of messages.
        var output = new SmallSegmentsWriter(24);
        var writer = new NetlinkWriter(output, 24);
        for (uint seq = 1; seq <= 200; seq++)
        {
            RouteMessages.WriteReplace(ref writer, GoldenVectorTests.FlannelRoute(), seq);
        }

        writer.Flush();
        byte[] all = output.ToArray();
        Assert.Equal(200 * 52, all.Length);
        var reader = new NetlinkMessageReader(all);
        uint expected = 1;
        while (reader.TryRead(out NetlinkMessage message))
        {
            Assert.Equal(expected++, message.Sequence);
            RouteInfo route = RouteMessages.Read(message.Payload);
            Assert.Equal(IPNetwork.Parse("10.244.1.0/24"), route.Destination);
        }

        Assert.Equal(201u, expected);
    }

    [Fact]
    public void Several_messages_share_one_buffer()
    {
        byte[] buffer = new byte[1024];
        var writer = new NetlinkWriter(buffer);
        var mac = MacAddress.Parse("0a:58:0a:f4:01:02");
        NeighborMessages.WriteReplace(ref writer, new NeighborSpec { LinkIndex = 4, Address = IPAddress.Parse("10.244.1.0"), LinkLayerAddress = mac }, 1);
        NeighborMessages.WriteReplaceFdb(ref writer, new FdbEntrySpec { LinkIndex = 4, MacAddress = mac, Destination = IPAddress.Parse("198.18.0.2") }, 2);
        RouteMessages.WriteReplace(ref writer, GoldenVectorTests.FlannelRoute(), 3);
        Assert.Equal(3, writer.MessageCount);
        Assert.Equal(48 + 48 + 52, writer.BytesWritten);
    }

    [Fact]
    public void Encoding_the_hot_path_messages_allocates_nothing()
    {
        RouteSpec route = GoldenVectorTests.FlannelRoute();
        var mac = MacAddress.Parse("0a:58:0a:f4:01:02");
        var neighbor = new NeighborSpec { LinkIndex = 4, Address = IPAddress.Parse("10.244.1.0"), LinkLayerAddress = mac };
        var fdb = new FdbEntrySpec { LinkIndex = 4, MacAddress = mac, Destination = IPAddress.Parse("198.18.0.2") };
        var vxlan = new VxlanLinkSpec { Name = "flannel.1", Vni = 1, Local = IPAddress.Parse("198.18.0.1"), UnderlayIndex = 3 };
        byte[] buffer = new byte[64 * 1024];

        static void EncodeAll(byte[] buffer, RouteSpec route, NeighborSpec neighbor, FdbEntrySpec fdb, VxlanLinkSpec vxlan)
        {
            var writer = new NetlinkWriter(buffer);
            for (uint i = 0; i < 100; i++)
            {
                RouteMessages.WriteReplace(ref writer, route, i);
                NeighborMessages.WriteReplace(ref writer, neighbor, i);
                NeighborMessages.WriteReplaceFdb(ref writer, fdb, i);
                LinkMessages.WriteCreateVxlan(ref writer, vxlan, i);
            }
        }

        EncodeAll(buffer, route, neighbor, fdb, vxlan); // JIT warm-up
        long before = GC.GetAllocatedBytesForCurrentThread();
        EncodeAll(buffer, route, neighbor, fdb, vxlan);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
    }

    /// <summary>An IBufferWriter that hands out small, separate segments, like a pipe would.</summary>
    private sealed class SmallSegmentsWriter(int segmentSize) : IBufferWriter<byte>
    {
        private readonly List<byte> _committed = [];
        private byte[] _current = [];

        public void Advance(int count) => _committed.AddRange(_current.AsSpan(0, count));

        public Memory<byte> GetMemory(int sizeHint = 0) => _current = new byte[Math.Max(sizeHint, segmentSize)];

        public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

        public byte[] ToArray() => [.. _committed];
    }
}
