using System.Net;
using BenchmarkDotNet.Attributes;
using Flannel.Netlink.Protocol;
using Flannel.Netlink.WireGuard;

namespace Flannel.Benchmarks.Encoding;

/// <summary>
/// WG_CMD_SET_DEVICE for a device with N peers (flannel's peer shape: public key, endpoint, keepalive, one allowed
/// IP, replace-allowed-IPs), encoded into a reused, caller-owned buffer; and the single-peer update the event path
/// sends. Goal (issue 12): 0 B allocated per message.
/// </summary>
[MemoryDiagnoser]
[MinColumn]
[MedianColumn]
public class EncodeWireGuardBenchmarks
{
    private const ushort FamilyId = 0x1b;
    private byte[] _buffer = [];
    private WireGuardDeviceUpdate _device = null!;
    private WireGuardDeviceUpdate _onePeer = null!;
    private uint _sequence;

    /// <summary>Peers in the device-wide set (mdlayher's attribute-count scale).</summary>
    [Params(1, 8, 64, 512)]
    public int Peers { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var peers = new WireGuardPeerUpdate[Peers];
        for (int i = 0; i < Peers; i++)
        {
            byte[] key = new byte[32];
            BitConverter.TryWriteBytes(key, i + 1);
            peers[i] = new WireGuardPeerUpdate
            {
                PublicKey = new WireGuardKey(key),
                Endpoint = new IPEndPoint(new IPAddress([198, 18, (byte)(i >> 8), (byte)i]), 51820),
                PersistentKeepaliveInterval = 25,
                ReplaceAllowedIps = true,
                AllowedIps = [new IPNetwork(new IPAddress([10, (byte)(i >> 8), (byte)i, 0]), 24)],
            };
        }

        byte[] privateKey = new byte[32];
        privateKey[0] = 0x40;
        _device = new WireGuardDeviceUpdate { Name = "flannel-wg", PrivateKey = new WireGuardKey(privateKey), ListenPort = 51820, ReplacePeers = true, Peers = peers };
        _onePeer = new WireGuardDeviceUpdate { Name = "flannel-wg", Peers = [peers[0]] };
        _buffer = new byte[64 + (Peers * 160)];
    }

    /// <summary>The whole device: private key, port, REPLACE_PEERS and every peer (split over messages past 32 KiB).</summary>
    [Benchmark]
    public int SetDevice()
    {
        var writer = new NetlinkWriter(_buffer);
        WireGuardMessages.WriteSetDevice(ref writer, FamilyId, _device, ++_sequence);
        return writer.BytesWritten;
    }

    /// <summary>One peer added or changed (what a lease event sends).</summary>
    [Benchmark]
    public int SetOnePeer()
    {
        var writer = new NetlinkWriter(_buffer);
        WireGuardMessages.WriteSetDevice(ref writer, FamilyId, _onePeer, ++_sequence);
        return writer.BytesWritten;
    }
}
