using System.Buffers;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Protocol;
using Flannel.Netlink.Sockets;

namespace Flannel.Netlink;

/// <summary>Encodes a request into a writer (synchronously, so the ref struct never crosses an await).</summary>
internal delegate NetlinkMessageToken MessageEncoder<TState>(ref NetlinkWriter writer, TState state, uint sequence);

/// <summary>Decodes one reply message; null skips it (e.g. a neighbour of another family).</summary>
internal delegate TResult? MessageDecoder<TResult>(ushort type, ReadOnlySpan<byte> payload)
    where TResult : class;

/// <content>The request/acknowledgement machinery: one request (or batch) in flight per socket.</content>
public sealed partial class RtNetlink
{
    /// <summary>64 KiB holds any single datagram the kernel sends on a dump (its skbs are at most 32 KiB).</summary>
    internal const int ReceiveBufferLength = 64 * 1024;

    /// <summary>The kernel rejects one sendmsg above SO_SNDBUF; stay well below the 1 MiB asked for.</summary>
    internal const int MaxBatchBytes = 128 * 1024;

    /// <summary>Dumps interrupted by concurrent changes (NLM_F_DUMP_INTR) are retried this often.</summary>
    internal const int DumpAttempts = 5;

    private readonly INetlinkSocket _socket;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ArrayBufferWriter<byte> _send = new(4096);
    private readonly byte[] _receive = new byte[ReceiveBufferLength];
    private readonly List<IDisposable> _keepAlive = [];
    private uint _sequence;
    private bool _disposed;

    /// <summary>The last sequence number used. For tests (wrap-around).</summary>
    internal uint LastSequence
    {
        get => _sequence;
        set => _sequence = value;
    }

    private uint NextSequence()
    {
        uint next = unchecked(++_sequence);
        return next == 0 ? unchecked(++_sequence) : next;
    }

    private int Encode<TState>(TState state, MessageEncoder<TState> encode, uint sequence)
    {
        _send.ResetWrittenCount();
        var writer = new NetlinkWriter(_send);
        encode(ref writer, state, sequence);
        writer.Flush();
        return _send.WrittenCount;
    }

    /// <summary>Sends a dump request and collects the decoded replies until NLMSG_DONE, retrying interrupted dumps.</summary>
    private async ValueTask<List<TResult>> DumpAsync<TState, TResult>(ushort type, TState state, MessageEncoder<TState> encode, MessageDecoder<TResult> decode, CancellationToken cancellationToken)
        where TResult : class
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            for (int attempt = 1; ; attempt++)
            {
                var results = new List<TResult>();
                uint sequence = NextSequence();
                Encode(state, encode, sequence);
                _socket.Send(_send.WrittenSpan);
                DumpStatus status = DumpStatus.Continue;
                while ((status & DumpStatus.Done) == 0)
                {
                    int received = await ReceiveAsync(cancellationToken).ConfigureAwait(false);
                    status |= CollectDump(type, _receive.AsSpan(0, received), sequence, results, decode);
                }

                if ((status & DumpStatus.Interrupted) == 0)
                {
                    return results;
                }

                if (attempt == DumpAttempts)
                {
                    throw new NetlinkException(RtnetlinkNames.MessageType(type), Errno.EINTR, "EINTR", sequence, $"the dump was interrupted by concurrent changes {DumpAttempts} times", null);
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Sends a single get and returns the decoded reply, or null when the kernel says the object is absent.</summary>
    private async ValueTask<TResult?> GetAsync<TState, TResult>(ushort type, TState state, MessageEncoder<TState> encode, MessageDecoder<TResult> decode, Func<int, bool> isAbsent, Func<TState, string> describe, CancellationToken cancellationToken)
        where TResult : class
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            uint sequence = NextSequence();
            Encode(state, encode, sequence);
            _socket.Send(_send.WrittenSpan);
            while (true)
            {
                int received = await ReceiveAsync(cancellationToken).ConfigureAwait(false);
                (bool found, TResult? result, NetlinkError? error) = FindReply(_receive.AsSpan(0, received), sequence, decode);
                if (error is NetlinkError e)
                {
                    if (e.IsAck)
                    {
                        continue;
                    }

                    if (isAbsent(e.Errno))
                    {
                        return null;
                    }

                    throw ToException(type, e, describe(state));
                }

                if (found)
                {
                    return result;
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async ValueTask<int> ReceiveAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _socket.ReceiveAsync(_receive, cancellationToken).ConfigureAwait(false);
        }
        catch (NetlinkOverrunException e)
        {
            throw new NetlinkException(RtnetlinkNames.MessageType(NetlinkHeader.NLMSG_OVERRUN), Errno.ENOBUFS, "ENOBUFS", 0, e.Message, null, "the reply was dropped by the kernel");
        }
    }

    private static NetlinkError? FindError(ReadOnlySpan<byte> datagram, uint sequence)
    {
        var reader = new NetlinkMessageReader(datagram);
        while (reader.TryRead(out NetlinkMessage message))
        {
            if (message.IsError && message.Sequence == sequence)
            {
                return NetlinkError.Parse(message);
            }
        }

        ThrowIfTruncated(reader);
        return null;
    }

    private static (bool Found, TResult? Result, NetlinkError? Error) FindReply<TResult>(ReadOnlySpan<byte> datagram, uint sequence, MessageDecoder<TResult> decode)
        where TResult : class
    {
        var reader = new NetlinkMessageReader(datagram);
        while (reader.TryRead(out NetlinkMessage message))
        {
            if (message.Sequence != sequence)
            {
                continue;
            }

            if (message.IsError)
            {
                return (false, null, NetlinkError.Parse(message));
            }

            if (message.Type >= NetlinkHeader.NLMSG_MIN_TYPE)
            {
                return (true, decode(message.Type, message.Payload), null);
            }
        }

        ThrowIfTruncated(reader);
        return (false, null, null);
    }

    private static DumpStatus CollectDump<TResult>(ushort type, ReadOnlySpan<byte> datagram, uint sequence, List<TResult> results, MessageDecoder<TResult> decode)
        where TResult : class
    {
        DumpStatus status = DumpStatus.Continue;
        var reader = new NetlinkMessageReader(datagram);
        while (reader.TryRead(out NetlinkMessage message))
        {
            if (message.Sequence != sequence)
            {
                continue; // a late reply to an earlier, cancelled request
            }

            if (message.IsDumpInterrupted)
            {
                status |= DumpStatus.Interrupted;
            }

            if (message.IsDone)
            {
                NetlinkError done = NetlinkError.ParseDone(message);
                if (!done.IsAck)
                {
                    throw ToException(type, done, "dump");
                }

                return status | DumpStatus.Done;
            }

            if (message.IsError)
            {
                NetlinkError error = NetlinkError.Parse(message);
                if (error.IsAck)
                {
                    continue;
                }

                throw ToException(type, error, "dump");
            }

            if (message.Type >= NetlinkHeader.NLMSG_MIN_TYPE && decode(message.Type, message.Payload) is TResult result)
            {
                results.Add(result);
            }
        }

        ThrowIfTruncated(reader);
        return status;
    }

    private static void ThrowIfTruncated(NetlinkMessageReader reader)
    {
        if (reader.Remaining != 0)
        {
            ThrowHelper.ThrowMalformed($"a datagram ends with {reader.Remaining} bytes that are not a whole netlink message");
        }
    }

    private static NetlinkException ToException(ushort type, NetlinkError error, string? detail) =>
        new(RtnetlinkNames.MessageType(type), error.Errno, Errno.Name(error.Errno), error.Sequence, error.AckMessage, error.AckOffset, detail);

    [Flags]
    private enum DumpStatus
    {
        Continue = 0,
        Done = 1,
        Interrupted = 2,
    }
}
