using System.ComponentModel;
using Flannel.Netlink;
using Flannel.Netlink.Messages;
using Flannel.Netlink.Protocol;

namespace Flannel.Benchmarks.Kernel;

/// <summary>
/// The kernel floor: every request is encoded (by Flannel.NET's own message encoders) before the clock
/// starts, into 64 KiB chunks; each chunk goes out in one sendmsg and its answers are read back in one go
/// afterwards, with no wait per message and no other work in between. As in Flannel.NET's batches, only a
/// chunk's last message asks for an acknowledgement (a failing message answers with its error all the same).
/// What is left is the kernel's own work plus the system calls: no implementation that learns every
/// message's outcome can be faster.
/// </summary>
/// <remarks>
/// Only the program and delete phases are measured; the objects are counted with iproute2 in between
/// (untimed). A chunk that answers with any error, or without its last message's acknowledgement, fails the run.
/// </remarks>
internal sealed class KernelFloorTool(bool nexthops) : PeerTool
{
    public override string Name => nexthops ? "floor-nexthop" : "floor";

    public override bool UsesNexthops => nexthops;

    public override bool NeedsWarmUp => true;

    public override string Description => (nexthops ? "nexthop form; " : "classic routes; ")
        + $"requests pre-encoded with Flannel.NET's encoders into {RawNetlinkSocket.MaxSendBytes / 1024} KiB chunks, one sendmsg per chunk, only its last message acknowledged, answers drained after each chunk; no dump phase";

    public override async Task<PhaseTimes> RunAsync(BenchmarkNamespace ns, PeerSet peers, string workDirectory, CancellationToken cancellationToken)
    {
        int linkIndex = await ReadLinkIndexAsync(ns, cancellationToken);
        List<Chunk> program = Encode(peers, linkIndex, nexthops, delete: false);
        List<Chunk> delete = Encode(peers, linkIndex, nexthops, delete: true);

        using RawNetlinkSocket socket = RawNetlinkSocket.Open(ns.Path);
        TimeSpan programTime = await TimeAsync(() => SendAllAsync(socket, program, cancellationToken));
        ObjectCounts counts = await ns.CountObjectsAsync(cancellationToken);
        TimeSpan deleteTime = await TimeAsync(() => SendAllAsync(socket, delete, cancellationToken));
        return new PhaseTimes(programTime, null, deleteTime, counts, counts);
    }

    private static Task SendAllAsync(RawNetlinkSocket socket, List<Chunk> chunks, CancellationToken cancellationToken)
    {
        foreach (Chunk chunk in chunks)
        {
            cancellationToken.ThrowIfCancellationRequested();
            socket.Send(chunk.Bytes);
            (int acks, int errors, int firstErrno) = socket.DrainReplies();
            if (errors > 0 || acks != 1)
            {
                throw new InvalidOperationException(
                    $"chunk of {chunk.Messages} requests: {acks} acks (1 expected), {errors} errors (first: {new Win32Exception(firstErrno).Message})");
            }
        }

        return Task.CompletedTask;
    }

    private static async Task<int> ReadLinkIndexAsync(BenchmarkNamespace ns, CancellationToken cancellationToken)
    {
        string index = await ProcessRunner.RunAsync(
            "ip", ["netns", "exec", ns.Name, "cat", $"/sys/class/net/{BenchmarkNamespace.VxlanName}/ifindex"], cancellationToken);
        return int.Parse(index.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Encodes every peer's requests, in the same order as the Flannel.NET tool (ARP, FDB, [nexthop,] route;
    /// deletes: route, [nexthop,] ARP, FDB), into chunks that never split a message.
    /// </summary>
    private static List<Chunk> Encode(PeerSet peers, int linkIndex, bool nexthops, bool delete)
    {
        const int headroom = 512; // more than any one of these messages
        var chunks = new List<Chunk>();
        byte[] buffer = new byte[RawNetlinkSocket.MaxSendBytes];
        var writer = new NetlinkWriter(buffer);
        uint sequence = 0;
        foreach (Peer peer in peers.Peers)
        {
            if (buffer.Length - writer.BytesWritten < headroom)
            {
                chunks.Add(Finish(buffer.AsSpan(0, writer.BytesWritten), writer.MessageCount));
                writer = new NetlinkWriter(buffer);
            }

            var neighbor = new NeighborSpec { LinkIndex = linkIndex, Address = peer.Gateway, LinkLayerAddress = peer.VtepMac };
            var fdb = new FdbEntrySpec { LinkIndex = linkIndex, MacAddress = peer.VtepMac, Destination = peer.Underlay };
            RouteSpec route = nexthops
                ? new RouteSpec { Destination = peer.Subnet, NexthopId = peer.NexthopId }
                : new RouteSpec { Destination = peer.Subnet, Gateway = peer.Gateway, LinkIndex = linkIndex, OnLink = true };
            if (!delete)
            {
                NeighborMessages.WriteReplace(ref writer, neighbor, ++sequence);
                NeighborMessages.WriteReplaceFdb(ref writer, fdb, ++sequence);
                if (nexthops)
                {
                    var nexthop = new NexthopSpec { Id = peer.NexthopId, Gateway = peer.Gateway, LinkIndex = linkIndex, OnLink = true };
                    NexthopMessages.WriteReplace(ref writer, nexthop, ++sequence);
                }

                RouteMessages.WriteReplace(ref writer, route, ++sequence);
            }
            else
            {
                RouteMessages.WriteDelete(ref writer, route, ++sequence);
                if (nexthops)
                {
                    NexthopMessages.WriteDelete(ref writer, peer.NexthopId, ++sequence);
                }

                NeighborMessages.WriteDelete(ref writer, neighbor, ++sequence);
                NeighborMessages.WriteDeleteFdb(ref writer, fdb, ++sequence);
            }
        }

        if (writer.BytesWritten > 0)
        {
            chunks.Add(Finish(buffer.AsSpan(0, writer.BytesWritten), writer.MessageCount));
        }

        return chunks;

        static Chunk Finish(ReadOnlySpan<byte> encoded, int messages)
        {
            byte[] bytes = encoded.ToArray();
            RtNetlink.AcknowledgeLastOnly(bytes);
            return new Chunk(bytes, messages);
        }
    }

    private sealed record Chunk(byte[] Bytes, int Messages);
}
