using System.Buffers;
using System.Threading.Channels;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Protocol;
using Flannel.Netlink.Sockets;

namespace Flannel.Netlink.Tests;

/// <summary>
/// An <see cref="INetlinkSocket"/> driven by a script, in the style of mdlayher's nltest: every datagram sent is
/// recorded and handed to <c>respond</c>, whose reply datagrams (or an overrun) are queued for the reader.
/// </summary>
internal sealed class ScriptedNetlinkSocket(Func<byte[], IEnumerable<object>> respond) : INetlinkSocket
{
    private readonly Channel<object> _replies = Channel.CreateUnbounded<object>();

    public List<byte[]> Sent { get; } = [];

    public int ReceiveBufferSize { get; init; } = 8 * 1024 * 1024;

    public bool Disposed { get; private set; }

    /// <summary>Queues a datagram (byte[]) or an exception to throw from the next receive.</summary>
    public void Enqueue(object reply) => _replies.Writer.TryWrite(reply);

    public void Send(ReadOnlySpan<byte> datagram)
    {
        byte[] copy = datagram.ToArray();
        Sent.Add(copy);
        foreach (object reply in respond(copy))
        {
            Enqueue(reply);
        }
    }

    public async ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        object next = await _replies.Reader.ReadAsync(cancellationToken);
        if (next is Exception e)
        {
            throw e;
        }

        byte[] datagram = (byte[])next;
        datagram.CopyTo(buffer);
        return datagram.Length;
    }

    public void Dispose() => Disposed = true;

    /// <summary>The (type, flags, sequence) of every message in a sent datagram.</summary>
    public static List<(ushort Type, ushort Flags, uint Sequence)> Requests(byte[] datagram)
    {
        var list = new List<(ushort, ushort, uint)>();
        var reader = new NetlinkMessageReader(datagram);
        while (reader.TryRead(out NetlinkMessage m))
        {
            list.Add((m.Type, m.Flags, m.Sequence));
        }

        return list;
    }

    /// <summary>An acknowledgement (NLMSG_ERROR with error 0) for <paramref name="sequence"/>, capped as with NETLINK_CAP_ACK.</summary>
    public static byte[] Ack(uint sequence, ushort requestType = 0) => Build((ref NetlinkWriter w) =>
    {
        NetlinkMessageToken m = w.BeginMessage(NetlinkHeader.NLMSG_ERROR, NetlinkHeader.NLM_F_CAPPED, sequence);
        WriteErrorBody(ref w, 0, requestType, sequence);
        w.EndMessage(m);
    });

    /// <summary>Acknowledgements for every request of a datagram, in one reply datagram.</summary>
    /// <summary>
    /// The kernel's answers to a datagram, as <c>netlink_rcv_skb</c> gives them: an NLMSG_ERROR for each message that
    /// fails (<paramref name="errnoFor"/>) or asks for an acknowledgement (NLM_F_ACK), none for one that succeeds
    /// without asking; with <paramref name="onlyErrors"/>, the errors alone (a test sends the acknowledgement later).
    /// </summary>
    public static byte[] AckAll(byte[] datagram, Func<uint, int>? errnoFor = null, bool onlyErrors = false) => Build((ref NetlinkWriter w) =>
    {
        foreach ((ushort type, ushort flags, uint seq) in Requests(datagram))
        {
            int errno = errnoFor?.Invoke(seq) ?? 0;
            if (errno == 0 && (onlyErrors || (flags & NetlinkHeader.NLM_F_ACK) == 0))
            {
                continue;
            }

            NetlinkMessageToken m = w.BeginMessage(NetlinkHeader.NLMSG_ERROR, NetlinkHeader.NLM_F_CAPPED, seq);
            WriteErrorBody(ref w, errno, type, seq);
            w.EndMessage(m);
        }
    });

    /// <summary>
    /// The kernel's NLMSG_ERROR for the first request in <paramref name="request"/>: -errno, the echoed request
    /// (only its header when <paramref name="capped"/>), and extended-ack TLVs.
    /// </summary>
    public static byte[] Error(byte[] request, int errno, string? message, uint? offset, bool capped)
    {
        uint sequence = BitConverter.ToUInt32(request, 8);
        int originalLength = (int)BitConverter.ToUInt32(request, 0);
        return Build((ref NetlinkWriter w) =>
        {
            ushort flags = (ushort)((message is null && offset is null ? 0 : NetlinkHeader.NLM_F_ACK_TLVS) | (capped ? NetlinkHeader.NLM_F_CAPPED : 0));
            NetlinkMessageToken m = w.BeginMessage(NetlinkHeader.NLMSG_ERROR, flags, sequence);
            w.WriteRaw(BitConverter.GetBytes(-errno));
            w.WriteRaw(request.AsSpan(0, capped ? 16 : originalLength));
            if (message is not null)
            {
                w.WriteAttributeString(NetlinkHeader.NLMSGERR_ATTR_MSG, message);
            }

            if (offset is uint o)
            {
                w.WriteAttributeUInt32(NetlinkHeader.NLMSGERR_ATTR_OFFS, o);
            }

            w.EndMessage(m);
        });
    }

    /// <summary>NLMSG_DONE for a dump, with -errno when the dump failed.</summary>
    public static byte[] Done(uint sequence, int errno = 0) => Build((ref NetlinkWriter w) =>
    {
        NetlinkMessageToken m = w.BeginMessage(NetlinkHeader.NLMSG_DONE, NetlinkHeader.NLM_F_MULTI, sequence);
        w.WriteRaw(BitConverter.GetBytes(-errno));
        w.EndMessage(m);
    });

    public delegate void Writer(ref NetlinkWriter writer);

    public static byte[] Build(Writer write, Func<byte[], byte[]>? post = null)
    {
        var output = new ArrayBufferWriter<byte>();
        var writer = new NetlinkWriter(output);
        write(ref writer);
        writer.Flush();
        byte[] bytes = output.WrittenSpan.ToArray();
        return post is null ? bytes : post(bytes);
    }

    private static void WriteErrorBody(ref NetlinkWriter w, int errno, ushort requestType, uint sequence)
    {
        // struct nlmsgerr: int error, then the request's nlmsghdr (capped: header only).
        Span<byte> body = stackalloc byte[20];
        body.Clear();
        BitConverter.TryWriteBytes(body, -errno);
        BitConverter.TryWriteBytes(body[4..], 16u);                   // nlmsg_len
        BitConverter.TryWriteBytes(body[8..], requestType);           // nlmsg_type
        BitConverter.TryWriteBytes(body[10..], (ushort)(NetlinkHeader.NLM_F_REQUEST | NetlinkHeader.NLM_F_ACK));
        BitConverter.TryWriteBytes(body[12..], sequence);             // nlmsg_seq
        w.WriteRaw(body);
    }
}
