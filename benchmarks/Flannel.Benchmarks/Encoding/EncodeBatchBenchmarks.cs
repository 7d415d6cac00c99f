using System.Buffers;
using BenchmarkDotNet.Attributes;
using Flannel.Netlink;
using Flannel.Netlink.Messages;
using Flannel.Netlink.Protocol;

namespace Flannel.Benchmarks.Encoding;

/// <summary>
/// A batch as <see cref="INetlink.ApplyAsync"/> sends it: for each of <see cref="Peers"/> distinct peers, the
/// ARP entry, the FDB entry and the route (3 messages per peer), back to back in one reused buffer. The
/// counts follow mdlayher/netlink's 1/8/64/512 benchmark ladder. Divide the time by 3 × Peers for the
/// per-message cost.
/// </summary>
[MemoryDiagnoser]
[MinColumn]
[MedianColumn]
public class EncodeBatchBenchmarks
{
    private const int MaxPeers = 512;
    private const int MaxMessageBytes = 64;

    private readonly byte[] _buffer = new byte[MaxPeers * 3 * MaxMessageBytes];
    private readonly ArrayBufferWriter<byte> _bufferWriter = new(MaxPeers * 3 * MaxMessageBytes);
    private NeighborSpec[] _neighbors = [];
    private FdbEntrySpec[] _fdb = [];
    private RouteSpec[] _routes = [];
    private NetlinkOperation[] _operations = [];
    private readonly List<IDisposable> _keepAlive = [];
    private uint _sequence;

    [Params(1, 8, 64, 512)]
    public int Peers { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _neighbors = Enumerable.Range(0, Peers).Select(p => EncoderFixtures.Neighbor(p)).ToArray();
        _fdb = Enumerable.Range(0, Peers).Select(p => EncoderFixtures.Fdb(p)).ToArray();
        _routes = Enumerable.Range(0, Peers).Select(p => EncoderFixtures.Route(p)).ToArray();
        var batch = new NetlinkBatch(Peers * 3);
        for (int i = 0; i < Peers; i++)
        {
            batch.ReplaceNeighbor(_neighbors[i]).ReplaceFdbEntry(_fdb[i]).ReplaceRoute(_routes[i]);
        }

        _operations = [.. batch.Operations];
    }

    /// <summary>Into a fixed span (the caller sized the buffer).</summary>
    [Benchmark(Baseline = true)]
    public int PeersIntoSpan()
    {
        var writer = new NetlinkWriter(_buffer);
        for (int i = 0; i < _routes.Length; i++)
        {
            NeighborMessages.WriteReplace(ref writer, _neighbors[i], ++_sequence);
            NeighborMessages.WriteReplaceFdb(ref writer, _fdb[i], ++_sequence);
            RouteMessages.WriteReplace(ref writer, _routes[i], ++_sequence);
        }

        return writer.BytesWritten;
    }

    /// <summary>Into a reused <see cref="IBufferWriter{T}"/> (the writer's growable path).</summary>
    [Benchmark]
    public int PeersIntoBufferWriter()
    {
        _bufferWriter.ResetWrittenCount();
        var writer = new NetlinkWriter(_bufferWriter);
        for (int i = 0; i < _routes.Length; i++)
        {
            NeighborMessages.WriteReplace(ref writer, _neighbors[i], ++_sequence);
            NeighborMessages.WriteReplaceFdb(ref writer, _fdb[i], ++_sequence);
            RouteMessages.WriteReplace(ref writer, _routes[i], ++_sequence);
        }

        writer.Flush();
        return _bufferWriter.WrittenCount;
    }

    /// <summary>
    /// The path <c>RtNetlink.ApplyAsync</c> takes: each <see cref="NetlinkOperation"/> of a batch encodes its own message
    /// (one virtual call per operation) into the reused buffer writer.
    /// </summary>
    [Benchmark]
    public int PeersThroughOperations()
    {
        _bufferWriter.ResetWrittenCount();
        var writer = new NetlinkWriter(_bufferWriter);
        foreach (NetlinkOperation operation in _operations)
        {
            operation.Encode(ref writer, ++_sequence, _keepAlive);
        }

        writer.Flush();
        return _bufferWriter.WrittenCount;
    }
}
