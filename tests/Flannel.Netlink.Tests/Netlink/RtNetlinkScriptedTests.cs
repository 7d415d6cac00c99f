using System.Net;
using Flannel.Netlink;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Messages;
using Flannel.Netlink.Protocol;
using Flannel.Netlink.Sockets;

namespace Flannel.Netlink.Tests;

/// <summary>RtNetlink over a scripted socket: request bytes asserted, canned acks, errors and dumps returned.</summary>
public sealed class RtNetlinkScriptedTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static RtNetlink Create(ScriptedNetlinkSocket socket, Func<int[], INetlinkSocket>? multicast = null) =>
        new(socket, multicast ?? (_ => throw new InvalidOperationException("no multicast in this test")), null);

    [Fact]
    public async Task A_route_replace_sends_the_iproute2_bytes_and_completes_on_its_ack()
    {
        var socket = new ScriptedNetlinkSocket(sent => [ScriptedNetlinkSocket.AckAll(sent)]);
        await using RtNetlink netlink = Create(socket);

        await netlink.ReplaceRouteAsync(GoldenVectorTests.FlannelRoute(), Ct);

        byte[] sent = Assert.Single(socket.Sent);
        uint sequence = BitConverter.ToUInt32(sent, 8);
        Assert.Equal(GoldenVector.Load("route-replace-onlink").WithSequence(sequence), sent);
    }

    [Fact]
    public async Task A_kernel_error_becomes_a_NetlinkException_with_operation_errno_ack_and_detail()
    {
        var socket = new ScriptedNetlinkSocket(sent => [ScriptedNetlinkSocket.Error(sent, Errno.ENODEV, "Nexthop device is not up", 44, capped: true)]);
        await using RtNetlink netlink = Create(socket);

        NetlinkException e = await Assert.ThrowsAsync<NetlinkException>(async () => await netlink.ReplaceRouteAsync(GoldenVectorTests.FlannelRoute(), Ct));

        Assert.Equal("RTM_NEWROUTE", e.Operation);
        Assert.Equal(19, e.Errno);
        Assert.Equal("ENODEV", e.ErrorName);
        Assert.Equal("Nexthop device is not up", e.ExtendedAckMessage);
        Assert.Equal(44u, e.ExtendedAckOffset);
        Assert.True(e.IsNotFound);
        Assert.Equal("RTM_NEWROUTE failed: ENODEV (19) for 10.244.1.0/24 via 10.244.1.0 dev 4 onlink: Nexthop device is not up", e.Message);
    }

    [Fact]
    public async Task Replies_to_other_sequence_numbers_are_skipped()
    {
        var socket = new ScriptedNetlinkSocket(sent =>
        {
            uint seq = BitConverter.ToUInt32(sent, 8);
            return [ScriptedNetlinkSocket.Error(sent, Errno.EEXIST, null, null, capped: true).Select((b, i) => i is >= 8 and < 12 ? (byte)0xEE : b).ToArray(), ScriptedNetlinkSocket.Ack(seq)];
        });
        await using RtNetlink netlink = Create(socket);
        await netlink.DeleteNexthopAsync(3, Ct); // the stale EEXIST for another sequence must not surface
    }

    [Fact]
    public async Task A_batch_goes_out_in_one_sendmsg_and_reports_exactly_the_failing_operation()
    {
        uint failing = 0;
        var socket = new ScriptedNetlinkSocket(sent =>
        {
            var requests = ScriptedNetlinkSocket.Requests(sent);
            failing = requests[4].Sequence;
            return [ScriptedNetlinkSocket.AckAll(sent, seq => seq == failing ? Errno.EEXIST : 0)];
        });
        await using RtNetlink netlink = Create(socket);
        NetlinkBatch batch = PeerBatch(3);

        NetlinkBatchResult result = await netlink.ApplyAsync(batch, Ct);

        byte[] datagram = Assert.Single(socket.Sent);
        Assert.Equal(9, ScriptedNetlinkSocket.Requests(datagram).Count);
        Assert.Equal(
            [RtnetlinkConstants.RTM_NEWNEIGH, RtnetlinkConstants.RTM_NEWNEIGH, RtnetlinkConstants.RTM_NEWROUTE],
            ScriptedNetlinkSocket.Requests(datagram).Take(3).Select(r => r.Type));
        Assert.Equal(1, result.FailedCount);
        Assert.Null(result[3]);
        Assert.NotNull(result[4]);
        Assert.Equal("RTM_NEWNEIGH", result[4]!.Operation);
        Assert.True(result[4]!.IsExists);
        Assert.Contains("fdb 0a:58:0a:f4:02:01 dev 4 dst 198.18.1.2 self", result[4]!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Only_a_chunk_s_last_message_asks_for_an_acknowledgement_and_its_answer_ends_the_chunk()
    {
        // The kernel answers a failing message at once and the last message's acknowledgement after it; here they
        // come in separate datagrams, the error first, and nothing else is answered.
        var socket = new ScriptedNetlinkSocket(sent =>
        {
            var requests = ScriptedNetlinkSocket.Requests(sent);
            uint failing = requests[1].Sequence;
            return
            [
                ScriptedNetlinkSocket.AckAll(sent, seq => seq == failing ? Errno.ENODEV : 0, onlyErrors: true),
                ScriptedNetlinkSocket.Ack(requests[^1].Sequence),
            ];
        });
        await using RtNetlink netlink = Create(socket);

        NetlinkBatchResult result = await netlink.ApplyAsync(PeerBatch(2), Ct);

        var sent = ScriptedNetlinkSocket.Requests(Assert.Single(socket.Sent));
        Assert.Equal(6, sent.Count);
        Assert.All(sent.Take(5), r => Assert.Equal(0, r.Flags & NetlinkHeader.NLM_F_ACK));
        Assert.NotEqual(0, sent[5].Flags & NetlinkHeader.NLM_F_ACK);
        Assert.All(sent, r => Assert.NotEqual(0, r.Flags & NetlinkHeader.NLM_F_REQUEST));
        Assert.Equal(1, result.FailedCount);
        Assert.Equal("ENODEV", result[1]!.ErrorName);
    }

    [Fact]
    public async Task A_large_batch_is_chunked_to_what_the_receive_buffer_can_acknowledge()
    {
        var socket = new ScriptedNetlinkSocket(sent => [ScriptedNetlinkSocket.AckAll(sent)]) { ReceiveBufferSize = 16 * 1024 };
        await using RtNetlink netlink = Create(socket);

        NetlinkBatchResult result = await netlink.ApplyAsync(PeerBatch(20), Ct); // 60 operations, 16 per chunk

        Assert.True(result.AllSucceeded);
        Assert.Equal(60, result.Count);
        Assert.Equal([16, 16, 16, 12], socket.Sent.Select(d => ScriptedNetlinkSocket.Requests(d).Count));
        var sequences = socket.Sent.SelectMany(ScriptedNetlinkSocket.Requests).Select(r => r.Sequence).ToList();
        Assert.Equal(sequences.Distinct().Count(), sequences.Count);
    }

    [Fact]
    public async Task Sequence_numbers_wrap_between_chunks_never_inside_one_and_skip_zero()
    {
        var socket = new ScriptedNetlinkSocket(sent => [ScriptedNetlinkSocket.AckAll(sent)]);
        await using RtNetlink netlink = Create(socket);
        netlink.LastSequence = uint.MaxValue - 2;

        NetlinkBatchResult result = await netlink.ApplyAsync(PeerBatch(3), Ct);

        Assert.True(result.AllSucceeded);
        Assert.Equal(
            [[uint.MaxValue - 1, uint.MaxValue], [2u, 3u, 4u, 5u, 6u, 7u, 8u]],
            socket.Sent.Select(d => ScriptedNetlinkSocket.Requests(d).Select(r => r.Sequence).ToArray()).ToArray());
    }

    [Fact]
    public async Task Acks_lost_to_an_overrun_are_reported_for_each_unacknowledged_operation()
    {
        ScriptedNetlinkSocket? socket = null;
        socket = new ScriptedNetlinkSocket(sent =>
        {
            var requests = ScriptedNetlinkSocket.Requests(sent);
            return [ScriptedNetlinkSocket.Ack(requests[0].Sequence), new NetlinkOverrunException()];
        });
        await using RtNetlink netlink = Create(socket);

        NetlinkBatchResult result = await netlink.ApplyAsync(PeerBatch(1), Ct);

        Assert.Null(result[0]);
        Assert.Equal(2, result.FailedCount);
        Assert.All(result.Errors.Skip(1), e => Assert.Equal("ENOBUFS", e!.ErrorName));
    }

    [Fact]
    public async Task A_multipart_dump_spanning_datagrams_is_collected_until_done()
    {
        var socket = new ScriptedNetlinkSocket(sent =>
        {
            uint seq = BitConverter.ToUInt32(sent, 8);
            return [RouteDump(seq, 0, 2, interrupted: false), RouteDump(seq + 100, 5, 1, interrupted: false), RouteDump(seq, 2, 2, interrupted: false), ScriptedNetlinkSocket.Done(seq)];
        });
        await using RtNetlink netlink = Create(socket);

        IReadOnlyList<RouteInfo> routes = await netlink.ListRoutesAsync(new RouteFilter(), Ct);

        Assert.Equal(["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"], routes.Select(r => r.Destination.ToString()));
        byte[] request = Assert.Single(socket.Sent);
        Assert.Equal(RtnetlinkConstants.RTM_GETROUTE, BitConverter.ToUInt16(request, 4));
        Assert.Equal(NetlinkHeader.NLM_F_REQUEST | NetlinkHeader.NLM_F_DUMP, BitConverter.ToUInt16(request, 6));
        Assert.Equal(RtnetlinkConstants.RT_TABLE_MAIN, request[16 + 4]);
    }

    [Fact]
    public async Task An_interrupted_dump_is_retried()
    {
        int dumps = 0;
        var socket = new ScriptedNetlinkSocket(sent =>
        {
            uint seq = BitConverter.ToUInt32(sent, 8);
            dumps++;
            return [RouteDump(seq, 0, dumps == 1 ? 1 : 3, interrupted: dumps == 1), ScriptedNetlinkSocket.Done(seq)];
        });
        await using RtNetlink netlink = Create(socket);

        IReadOnlyList<RouteInfo> routes = await netlink.ListRoutesAsync(new RouteFilter(), Ct);

        Assert.Equal(2, socket.Sent.Count);
        Assert.Equal(3, routes.Count);
    }

    [Fact]
    public async Task A_dump_refused_in_NLMSG_DONE_throws()
    {
        var socket = new ScriptedNetlinkSocket(sent => [ScriptedNetlinkSocket.Done(BitConverter.ToUInt32(sent, 8), Errno.EINVAL)]);
        await using RtNetlink netlink = Create(socket);

        NetlinkException e = await Assert.ThrowsAsync<NetlinkException>(async () => await netlink.ListNexthopsAsync(null, Ct));
        Assert.Equal("RTM_GETNEXTHOP", e.Operation);
        Assert.Equal("EINVAL", e.ErrorName);
    }

    [Fact]
    public async Task A_missing_link_is_null_and_a_present_one_is_decoded()
    {
        var socket = new ScriptedNetlinkSocket(sent =>
        {
            uint seq = BitConverter.ToUInt32(sent, 8);
            return seq == 1
                ? [ScriptedNetlinkSocket.Error(sent, Errno.ENODEV, "no such device", null, capped: true)]
                : [ScriptedNetlinkSocket.Build((ref NetlinkWriter w) =>
                {
                    NetlinkMessageToken m = w.BeginMessage(RtnetlinkConstants.RTM_NEWLINK, 0, seq);
                    w.WriteIfInfoMsg(0, 1, 7, LinkConstants.IFF_UP, 0);
                    w.WriteAttributeString(LinkConstants.IFLA_IFNAME, "flannel.1");
                    w.WriteAttributeUInt32(LinkConstants.IFLA_MTU, 1450);
                    w.WriteAttributeMac(LinkConstants.IFLA_ADDRESS, MacAddress.Parse("0a:58:0a:f4:00:01"));
                    w.EndMessage(m);
                })];
        });
        await using RtNetlink netlink = Create(socket);

        Assert.Null(await netlink.GetLinkAsync("flannel.1", Ct));
        LinkInfo? link = await netlink.GetLinkAsync("flannel.1", Ct);

        Assert.NotNull(link);
        Assert.Equal(7, link.Index);
        Assert.Equal(1450, link.Mtu);
        Assert.True(link.IsUp);
        Assert.Equal(MacAddress.Parse("0a:58:0a:f4:00:01"), link.Address);
    }

    [Fact]
    public async Task Watch_reports_an_overrun_then_a_deleted_link()
    {
        var multicast = new ScriptedNetlinkSocket(_ => []);
        int[]? groups = null;
        await using RtNetlink netlink = Create(new ScriptedNetlinkSocket(_ => []), g =>
        {
            groups = g;
            return multicast;
        });
        multicast.Enqueue(new NetlinkOverrunException());
        multicast.Enqueue(ScriptedNetlinkSocket.Build((ref NetlinkWriter w) =>
        {
            NetlinkMessageToken m = w.BeginMessage(RtnetlinkConstants.RTM_DELLINK, 0, 0);
            w.WriteIfInfoMsg(0, 1, 7, 0, 0);
            w.WriteAttributeString(LinkConstants.IFLA_IFNAME, "flannel.1");
            w.EndMessage(m);
        }));

        var seen = new List<NetlinkNotification>();
        await foreach (NetlinkNotification n in netlink.WatchAsync(NetlinkNotificationGroups.Link | NetlinkNotificationGroups.Route, Ct))
        {
            seen.Add(n);
            if (seen.Count == 2)
            {
                break;
            }
        }

        Assert.Equal([RtnetlinkConstants.RTNLGRP_LINK, RtnetlinkConstants.RTNLGRP_IPV4_ROUTE, RtnetlinkConstants.RTNLGRP_IPV6_ROUTE], groups!);
        Assert.Equal(NetlinkNotificationKind.Overrun, seen[0].Kind);
        Assert.Equal(NetlinkNotificationKind.LinkDeleted, seen[1].Kind);
        Assert.Equal("flannel.1", seen[1].Link?.Name);
        Assert.True(multicast.Disposed);
    }

    [Fact]
    public void Sysctl_keys_must_stay_under_proc_sys()
    {
        Assert.Equal("/proc/sys/net/ipv6/conf/flannel-v6.1/accept_ra", ProcSysctl.PathOf("net/ipv6/conf/flannel-v6.1/accept_ra"));
        Assert.Throws<ArgumentException>(() => ProcSysctl.PathOf("/etc/passwd"));
        Assert.Throws<ArgumentException>(() => ProcSysctl.PathOf("net/../../etc/passwd"));
        Assert.Throws<ArgumentException>(() => ProcSysctl.PathOf("net//x"));
    }

    private static NetlinkBatch PeerBatch(int peers)
    {
        var batch = new NetlinkBatch(peers * 3);
        for (int i = 1; i <= peers; i++)
        {
            var mac = MacAddress.Parse($"0a:58:0a:f4:{i:x2}:01");
            var gateway = IPAddress.Parse($"10.244.{i}.0");
            batch.ReplaceNeighbor(new NeighborSpec { LinkIndex = 4, Address = gateway, LinkLayerAddress = mac })
                .ReplaceFdbEntry(new FdbEntrySpec { LinkIndex = 4, MacAddress = mac, Destination = IPAddress.Parse($"198.18.1.{i}") })
                .ReplaceRoute(new RouteSpec { Destination = new IPNetwork(gateway, 24), Gateway = gateway, LinkIndex = 4, OnLink = true });
        }

        return batch;
    }

    private static byte[] RouteDump(uint sequence, int first, int count, bool interrupted) => ScriptedNetlinkSocket.Build((ref NetlinkWriter w) =>
    {
        for (int i = first; i < first + count; i++)
        {
            ushort flags = (ushort)(NetlinkHeader.NLM_F_MULTI | (interrupted ? NetlinkHeader.NLM_F_DUMP_INTR : 0));
            NetlinkMessageToken m = w.BeginMessage(RtnetlinkConstants.RTM_NEWROUTE, flags, sequence);
            w.WriteRtMsg(AddressFamilies.AF_INET, 24, 0, 0, RtnetlinkConstants.RT_TABLE_MAIN, 3, 0, 1, RtnetlinkConstants.RTNH_F_ONLINK);
            w.WriteAttributeAddress(RtnetlinkConstants.RTA_DST, IPAddress.Parse($"10.244.{i}.0"));
            w.WriteAttributeAddress(RtnetlinkConstants.RTA_GATEWAY, IPAddress.Parse($"10.244.{i}.0"));
            w.WriteAttributeUInt32(RtnetlinkConstants.RTA_OIF, 4);
            w.EndMessage(m);
        }
    });
}
