using System.Buffers.Binary;
using System.Net;
using Flannel.Netlink;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Protocol;
using Flannel.Netlink.WireGuard;

namespace Flannel.Netlink.Tests;

/// <summary>
/// The kernel WireGuard control path (<see cref="WireGuardNetlink"/>) against a scripted NETLINK_GENERIC socket that
/// answers like the kernel: the controller's family description, acknowledgements per message, a dump in several
/// messages ended by NLMSG_DONE, and refusals (ENOENT without the module, ENODEV for a missing device).
/// </summary>
public sealed class WireGuardNetlinkScriptedTests
{
    private const ushort FamilyId = 27;

    private static WireGuardKey Key(int seed)
    {
        byte[] bytes = new byte[32];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, seed);
        bytes[31] = 0x40;
        return new WireGuardKey(bytes);
    }

    /// <summary>The controller's CTRL_CMD_NEWFAMILY reply for wireguard, then the acknowledgement.</summary>
    private static IEnumerable<object> FamilyReply(byte[] request)
    {
        uint sequence = BitConverter.ToUInt32(request, 8);
        yield return ScriptedNetlinkSocket.Build((ref NetlinkWriter w) =>
        {
            NetlinkMessageToken m = w.BeginMessage(GenericNetlinkConstants.GENL_ID_CTRL, 0, sequence);
            w.WriteGenlMsgHdr(GenericNetlinkConstants.CTRL_CMD_NEWFAMILY, 2);
            w.WriteAttributeUInt16(GenericNetlinkConstants.CTRL_ATTR_FAMILY_ID, FamilyId);
            w.WriteAttributeString(GenericNetlinkConstants.CTRL_ATTR_FAMILY_NAME, "wireguard");
            w.WriteAttributeUInt32(GenericNetlinkConstants.CTRL_ATTR_VERSION, 1);
            w.EndMessage(m);
        });
        yield return ScriptedNetlinkSocket.Ack(sequence, GenericNetlinkConstants.GENL_ID_CTRL);
    }

    private static async Task<(WireGuardNetlink Control, ScriptedNetlinkSocket Socket)> OpenAsync(Func<byte[], IEnumerable<object>> afterFamily)
    {
        bool resolved = false;
        var socket = new ScriptedNetlinkSocket(request =>
        {
            if (!resolved)
            {
                resolved = true;
                return FamilyReply(request);
            }

            return afterFamily(request);
        });
        WireGuardNetlink? control = await WireGuardNetlink.TryOpenAsync(socket, null, TestContext.Current.CancellationToken);
        Assert.NotNull(control);
        return (control, socket);
    }

    [Fact]
    public async Task Opening_resolves_the_wireguard_family_with_wireguard_tools_request()
    {
        (WireGuardNetlink control, ScriptedNetlinkSocket socket) = await OpenAsync(_ => []);
        await using (control)
        {
            GoldenVector golden = GoldenVector.Load("genl-getfamily-wireguard");
            byte[] sent = Assert.Single(socket.Sent);
            Assert.Equal(golden.WithSequence(BitConverter.ToUInt32(sent, 8)), sent);
            Assert.Equal("kernel (generic netlink family wireguard, id 27)", control.Description);
        }

        Assert.True(socket.Disposed);
    }

    [Fact]
    public async Task Without_the_module_the_family_is_absent_and_the_socket_is_closed()
    {
        var socket = new ScriptedNetlinkSocket(request => [ScriptedNetlinkSocket.Error(request, Errno.ENOENT, null, null, capped: true)]);
        Assert.Null(await WireGuardNetlink.TryOpenAsync(socket, null, TestContext.Current.CancellationToken));
        Assert.True(socket.Disposed);
    }

    [Fact]
    public async Task A_set_split_over_messages_waits_for_every_acknowledgement()
    {
        (WireGuardNetlink control, ScriptedNetlinkSocket socket) = await OpenAsync(request => [ScriptedNetlinkSocket.AckAll(request)]);
        await using (control)
        {
            var peers = Enumerable.Range(1, 600).Select(i => new WireGuardPeerUpdate
            {
                PublicKey = Key(i),
                Endpoint = new IPEndPoint(IPAddress.Parse($"198.18.{i / 250}.{(i % 250) + 1}"), 51820),
                ReplaceAllowedIps = true,
                AllowedIps = [new IPNetwork(IPAddress.Parse($"10.{i / 250}.{i % 250}.0"), 24)],
            }).ToList();
            await control.SetDeviceAsync(new WireGuardDeviceUpdate { Name = "flannel-wg", ReplacePeers = true, Peers = peers }, TestContext.Current.CancellationToken);

            List<(ushort Type, ushort Flags, uint Sequence)> requests = socket.Sent.Skip(1).SelectMany(ScriptedNetlinkSocket.Requests).ToList();
            Assert.True(requests.Count > 1, "600 peers take more than one 32 KiB message");
            Assert.All(requests, r => Assert.Equal(FamilyId, r.Type));
            Assert.All(requests, r => Assert.Equal(NetlinkHeader.NLM_F_REQUEST | NetlinkHeader.NLM_F_ACK, r.Flags));
            Assert.Equal(Enumerable.Range(0, requests.Count).Select(i => requests[0].Sequence + (uint)i), requests.Select(r => r.Sequence));
        }
    }

    [Fact]
    public async Task A_refused_message_is_reported_after_all_acknowledgements_so_the_next_request_is_not_confused()
    {
        int call = 0;
        (WireGuardNetlink control, ScriptedNetlinkSocket socket) = await OpenAsync(request =>
        {
            call++;
            if (call == 1)
            {
                // Refuse the first message of the set (an endpoint the kernel rejects), accept the rest.
                uint first = ScriptedNetlinkSocket.Requests(request)[0].Sequence;
                return [ScriptedNetlinkSocket.AckAll(request, seq => seq == first ? Errno.EINVAL : 0)];
            }

            return [ScriptedNetlinkSocket.AckAll(request)];
        });
        await using (control)
        {
            CancellationToken cancel = TestContext.Current.CancellationToken;
            var update = new WireGuardDeviceUpdate
            {
                Name = "flannel-wg",
                Peers = Enumerable.Range(1, 600).Select(i => new WireGuardPeerUpdate { PublicKey = Key(i), AllowedIps = [new IPNetwork(IPAddress.Parse($"10.{i / 250}.{i % 250}.0"), 24)] }).ToList(),
            };
            NetlinkException error = await Assert.ThrowsAsync<NetlinkException>(async () => await control.SetDeviceAsync(update, cancel));
            Assert.Equal("WG_CMD_SET_DEVICE", error.Operation);
            Assert.Equal(Errno.EINVAL, error.Errno);
            Assert.Contains("device flannel-wg (600 peer change(s))", error.Message, StringComparison.Ordinal);

            await control.SetDeviceAsync(new WireGuardDeviceUpdate { Name = "flannel-wg", ListenPort = 51820 }, cancel);
        }
    }

    [Fact]
    public async Task Get_reads_a_dump_in_several_messages_and_ignores_replies_to_other_sequences()
    {
        (WireGuardNetlink control, ScriptedNetlinkSocket socket) = await OpenAsync(request =>
        {
            uint sequence = BitConverter.ToUInt32(request, 8);
            Assert.Equal(NetlinkHeader.NLM_F_REQUEST | NetlinkHeader.NLM_F_ACK | NetlinkHeader.NLM_F_DUMP, BitConverter.ToUInt16(request, 6));
            return
            [
                ScriptedNetlinkSocket.Ack(sequence - 5), // late, for an earlier request
                DeviceMessage(sequence, first: true),
                DeviceMessage(sequence, first: false),
                ScriptedNetlinkSocket.Done(sequence),
            ];
        });
        await using (control)
        {
            WireGuardDevice? device = await control.GetDeviceAsync("flannel-wg", TestContext.Current.CancellationToken);
            Assert.NotNull(device);
            Assert.Equal("flannel-wg", device.Name);
            Assert.Equal((ushort)51820, device.ListenPort);
            Assert.Equal([Key(1), Key(2)], device.Peers.Select(p => p.PublicKey));
            Assert.Equal([IPNetwork.Parse("10.244.2.0/24")], device.Peers[0].AllowedIps);
        }
    }

    [Fact]
    public async Task A_missing_device_reads_as_null_and_a_device_of_another_kind_is_an_error()
    {
        int call = 0;
        (WireGuardNetlink control, _) = await OpenAsync(request =>
            [ScriptedNetlinkSocket.Error(request, ++call == 1 ? Errno.ENODEV : Errno.EOPNOTSUPP, null, null, capped: true)]);
        await using (control)
        {
            CancellationToken cancel = TestContext.Current.CancellationToken;
            Assert.Null(await control.GetDeviceAsync("flannel-wg", cancel));
            NetlinkException error = await Assert.ThrowsAsync<NetlinkException>(async () => await control.GetDeviceAsync("eth0", cancel));
            Assert.Equal("EOPNOTSUPP", error.ErrorName);
            Assert.Contains("WG_CMD_GET_DEVICE failed: EOPNOTSUPP (95) for device eth0", error.Message, StringComparison.Ordinal);
        }
    }

    private static byte[] DeviceMessage(uint sequence, bool first) => ScriptedNetlinkSocket.Build((ref NetlinkWriter w) =>
    {
        NetlinkMessageToken m = w.BeginMessage(FamilyId, NetlinkHeader.NLM_F_MULTI, sequence);
        w.WriteGenlMsgHdr(WireGuardConstants.WG_CMD_GET_DEVICE, WireGuardConstants.WG_GENL_VERSION);
        w.WriteAttributeString(WireGuardConstants.WGDEVICE_A_IFNAME, "flannel-wg");
        if (first)
        {
            w.WriteAttributeUInt16(WireGuardConstants.WGDEVICE_A_LISTEN_PORT, 51820);
        }

        NetlinkNestToken peers = w.BeginNested(WireGuardConstants.WGDEVICE_A_PEERS, setNestedFlag: true);
        NetlinkNestToken peer = w.BeginNested(0, setNestedFlag: true);
        byte[] key = new byte[32];
        Key(first ? 1 : 2).CopyTo(key);
        w.WriteAttribute(WireGuardConstants.WGPEER_A_PUBLIC_KEY, key);
        if (first)
        {
            NetlinkNestToken ips = w.BeginNested(WireGuardConstants.WGPEER_A_ALLOWEDIPS, setNestedFlag: true);
            NetlinkNestToken ip = w.BeginNested(0, setNestedFlag: true);
            w.WriteAttributeUInt16(WireGuardConstants.WGALLOWEDIP_A_FAMILY, 2);
            w.WriteAttributeAddress(WireGuardConstants.WGALLOWEDIP_A_IPADDR, IPAddress.Parse("10.244.2.0"));
            w.WriteAttributeUInt8(WireGuardConstants.WGALLOWEDIP_A_CIDR_MASK, 24);
            w.EndNested(ip);
            w.EndNested(ips);
        }

        w.EndNested(peer);
        w.EndNested(peers);
        w.EndMessage(m);
    });
}
