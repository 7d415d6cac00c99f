using Flannel.Netlink.Interop;
using Flannel.Netlink.Messages;
using Flannel.Netlink.Protocol;
using Flannel.Netlink.Sockets;

namespace Flannel.Netlink;

/// <content>Batches: many requests per sendmsg, every acknowledgement matched by sequence number.</content>
public sealed partial class RtNetlink
{
    /// <summary>
    /// Upper bound of requests per sendmsg. The kernel processes a datagram's messages synchronously inside
    /// sendmsg and queues one ack each; a chunk must not queue more acks than the receive buffer holds (an ack
    /// costs about 1 KiB of buffer accounting), or the kernel drops them with ENOBUFS.
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

    private async ValueTask CollectAcksAsync(IReadOnlyList<NetlinkOperation> operations, int start, int count, uint firstSequence, NetlinkException?[] errors, CancellationToken cancellationToken)
    {
        var acknowledged = new bool[count];
        int pending = count;
        while (pending > 0)
        {
            int received;
            try
            {
                received = await _socket.ReceiveAsync(_receive, cancellationToken).ConfigureAwait(false);
            }
            catch (NetlinkOverrunException e)
            {
                // Acks were dropped: what happened to the unacknowledged requests is unknown, so say so for each.
                for (int i = 0; i < count; i++)
                {
                    if (!acknowledged[i])
                    {
                        NetlinkOperation op = operations[start + i];
                        errors[start + i] = new NetlinkException(op.MessageName, Errno.ENOBUFS, "ENOBUFS", unchecked(firstSequence + (uint)i), e.Message, null, op.ToString());
                    }
                }

                return;
            }

            pending -= MatchAcks(_receive.AsSpan(0, received), operations, start, count, firstSequence, acknowledged, errors);
        }
    }

    private static int MatchAcks(ReadOnlySpan<byte> datagram, IReadOnlyList<NetlinkOperation> operations, int start, int count, uint firstSequence, bool[] acknowledged, NetlinkException?[] errors)
    {
        int matched = 0;
        var reader = new NetlinkMessageReader(datagram);
        while (reader.TryRead(out NetlinkMessage message))
        {
            uint offset = unchecked(message.Sequence - firstSequence);
            if (!message.IsError || offset >= (uint)count || acknowledged[offset])
            {
                continue;
            }

            acknowledged[offset] = true;
            matched++;
            NetlinkError error = NetlinkError.Parse(message);
            if (!error.IsAck)
            {
                NetlinkOperation op = operations[start + (int)offset];
                errors[start + (int)offset] = ToException(op.MessageType, error, op.ToString());
            }
        }

        ThrowIfTruncated(reader);
        return matched;
    }
}
