using System.Runtime.InteropServices;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Messages;
using Flannel.Netlink.Protocol;
using Flannel.Netlink.Sockets;

namespace Flannel.Netlink;

/// <content>Batches: many requests per sendmsg, one acknowledgement per chunk, every error matched by sequence number.</content>
public sealed partial class RtNetlink
{
    /// <summary>
    /// Upper bound of requests per sendmsg. The kernel processes a datagram's messages synchronously inside
    /// sendmsg, in order, and answers a message with an NLMSG_ERROR when it fails or asks for an acknowledgement
    /// (NLM_F_ACK). Only a chunk's last message asks (see <see cref="AcknowledgeLastOnly"/>), but a chunk whose every
    /// message fails still queues one error each: it must not queue more than the receive buffer holds (about 1 KiB
    /// of buffer accounting each), or the kernel drops them with ENOBUFS.
    /// </summary>
    internal const int MaxBatchMessages = 1024;

    /// <inheritdoc />
    public async ValueTask<NetlinkBatchResult> ApplyAsync(NetlinkBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        IReadOnlyList<NetlinkOperation> operations = batch.Operations;
        var errors = new NetlinkException?[operations.Count];
        int perChunk = Math.Clamp(_socket.ReceiveBufferSize / 1024, 16, MaxBatchMessages);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            int next = 0, chunks = 0;
            while (next < operations.Count)
            {
                chunks++;
                int count;
                uint firstSequence;
                try
                {
                    count = EncodeChunk(operations, next, perChunk, _keepAlive, out firstSequence);
                    AcknowledgeLastOnly(MemoryMarshal.AsMemory(_send.WrittenMemory).Span);
                    _socket.Send(_send.WrittenSpan);
                }
                finally
                {
                    // The kernel has processed the datagram when sendmsg returns; descriptors it referenced can go.
                    foreach (IDisposable resource in _keepAlive)
                    {
                        resource.Dispose();
                    }

                    _keepAlive.Clear();
                }

                await CollectAcksAsync(operations, next, count, firstSequence, errors, cancellationToken).ConfigureAwait(false);
                next += count;
            }

            var result = new NetlinkBatchResult(errors);
            _logger.BatchApplied(operations.Count, chunks, result.FailedCount);
            return result;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Encodes operations from <paramref name="start"/> until the chunk is full; returns how many, and the
    /// sequence number of the first (the others follow it without a gap).
    /// </summary>
    private int EncodeChunk(IReadOnlyList<NetlinkOperation> operations, int start, int perChunk, List<IDisposable> keepAlive, out uint firstSequence)
    {
        _send.ResetWrittenCount();
        var writer = new NetlinkWriter(_send, 64 * 1024);
        int count = 0;
        firstSequence = 0;
        while (start + count < operations.Count && count < perChunk && writer.BytesWritten < MaxBatchBytes)
        {
            uint sequence = NextSequence();
            if (sequence == 1 && count > 0)
            {
                break; // never wrap the sequence inside a chunk: ack matching uses (sequence - first).
            }

            if (count == 0)
            {
                firstSequence = sequence;
            }

            operations[start + count].Encode(ref writer, sequence, keepAlive);
            count++;
        }

        writer.Flush();
        return count;
    }

    /// <summary>
    /// Clears NLM_F_ACK on every message of a chunk but the last. A message that succeeds then gets no answer, one
    /// that fails still gets its error, and the last one's answer (its acknowledgement or its error) comes after
    /// every earlier message's error, so it marks the end of the chunk. Acknowledging all 15,000 messages of a
    /// 5,000-peer start-up pass had the kernel queue, and flanneld receive, 15,000 datagrams: about 38 ms of receive
    /// path in a native cold start, and the kernel's work to queue them.
    /// </summary>
    internal static void AcknowledgeLastOnly(Span<byte> datagram)
    {
        int offset = 0;
        while (true)
        {
            int length = (int)MemoryMarshal.Read<uint>(datagram[offset..]);
            int next = offset + NetlinkAlignment.MessageAlign(length);
            if (next >= datagram.Length)
            {
                return;
            }

            Span<byte> flags = datagram.Slice(offset + FlagsOffset, sizeof(ushort));
            MemoryMarshal.Write(flags, (ushort)(MemoryMarshal.Read<ushort>(flags) & ~NetlinkHeader.NLM_F_ACK));
            offset = next;
        }
    }

    /// <summary>Offset of nlmsg_flags in struct nlmsghdr (after nlmsg_len and nlmsg_type).</summary>
    private const int FlagsOffset = sizeof(uint) + sizeof(ushort);

    private async ValueTask CollectAcksAsync(IReadOnlyList<NetlinkOperation> operations, int start, int count, uint firstSequence, NetlinkException?[] errors, CancellationToken cancellationToken)
    {
        var answered = new bool[count];
        while (!answered[count - 1])
        {
            int received;
            try
            {
                received = await _socket.ReceiveAsync(_receive, cancellationToken).ConfigureAwait(false);
            }
            catch (NetlinkOverrunException e)
            {
                // Answers were dropped: whether a request without one succeeded or failed is unknown, so say so
                // for each.
                for (int i = 0; i < count; i++)
                {
                    if (!answered[i])
                    {
                        NetlinkOperation op = operations[start + i];
                        errors[start + i] = new NetlinkException(op.MessageName, Errno.ENOBUFS, "ENOBUFS", unchecked(firstSequence + (uint)i), e.Message, null, op.ToString());
                    }
                }

                return;
            }

            MatchAnswers(_receive.AsSpan(0, received), operations, start, count, firstSequence, answered, errors);
        }
    }

    /// <summary>Records the errors of a received datagram; every request before the last that has none succeeded.</summary>
    private static void MatchAnswers(ReadOnlySpan<byte> datagram, IReadOnlyList<NetlinkOperation> operations, int start, int count, uint firstSequence, bool[] answered, NetlinkException?[] errors)
    {
        var reader = new NetlinkMessageReader(datagram);
        while (reader.TryRead(out NetlinkMessage message))
        {
            uint offset = unchecked(message.Sequence - firstSequence);
            if (!message.IsError || offset >= (uint)count || answered[offset])
            {
                continue;
            }

            answered[offset] = true;
            NetlinkError error = NetlinkError.Parse(message);
            if (!error.IsAck)
            {
                NetlinkOperation op = operations[start + (int)offset];
                errors[start + (int)offset] = ToException(op.MessageType, error, op.ToString());
            }
        }

        ThrowIfTruncated(reader);
    }
}
