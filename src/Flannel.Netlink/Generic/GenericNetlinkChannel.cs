using System.Buffers;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Protocol;
using Flannel.Netlink.Sockets;

namespace Flannel.Netlink.Generic;

/// <summary>Encodes one or more request messages (synchronously, so the ref struct never crosses an await) and returns how many.</summary>
internal delegate int GenericRequestEncoder<TState>(ref NetlinkWriter writer, TState state, uint firstSequence);

/// <summary>
/// Requests over one NETLINK_GENERIC socket: resolve a family, send commands and wait for every acknowledgement,
/// run a dump. One request in flight at a time; sequence numbers tell late replies to a cancelled request apart.
/// </summary>
/// <remarks>
/// Generic netlink differs from rtnetlink only in its envelope (<c>struct genlmsghdr</c> after the nlmsghdr) and in
/// message types that are family ids the controller hands out, so this uses the same writer, reader and error
/// decoding as <see cref="RtNetlink"/>; only the request loop is its own, because RtNetlink's is private to it.
/// </remarks>
internal sealed class GenericNetlinkChannel : IDisposable
{
    /// <summary>64 KiB holds any single datagram the kernel sends on a dump.</summary>
    internal const int ReceiveBufferLength = 64 * 1024;

    /// <summary>Requests are sent in datagrams of at most this many bytes, split at message boundaries.</summary>
    internal const int MaxDatagramBytes = 128 * 1024;

    private readonly INetlinkSocket _socket;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ArrayBufferWriter<byte> _send = new(4096);
    private readonly byte[] _receive = new byte[ReceiveBufferLength];
    private uint _sequence;
    private bool _disposed;

    public GenericNetlinkChannel(INetlinkSocket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        _socket = socket;
    }

    /// <summary>The last sequence number used (tests set it to check wrap-around).</summary>
    internal uint LastSequence
    {
        get => _sequence;
        set => _sequence = value;
    }

    /// <summary>Resolves a family by name; null when the kernel has no such family (ENOENT: its module is not loaded).</summary>
    public async ValueTask<GenericNetlinkFamily?> ResolveFamilyAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        GenericNetlinkFamily? family = null;
        try
        {
            await RequestAsync(
                "CTRL_CMD_GETFAMILY",
                name,
                static (ref NetlinkWriter writer, string familyName, uint sequence) =>
                {
                    GenericNetlinkMessages.WriteGetFamily(ref writer, familyName, sequence);
                    return 1;
                },
                static familyName => $"family {familyName}",
                (type, payload) => family ??= type == GenericNetlinkConstants.GENL_ID_CTRL ? GenericNetlinkMessages.DecodeFamily(payload) : null,
                dump: false,
                cancellationToken).ConfigureAwait(false);
        }
        catch (NetlinkException e) when (e.Errno == Errno.ENOENT)
        {
            return null;
        }

        return family ?? throw new NetlinkException($"the generic netlink controller acknowledged the lookup of family {name} without describing it");
    }

    /// <summary>
    /// Sends the messages <paramref name="encode"/> writes (each with NLM_F_ACK), waits for all their
    /// acknowledgements and throws the first refusal, if any. Replies other than acknowledgements go to
    /// <paramref name="onReply"/>. With <paramref name="dump"/> the single request is a dump and the loop ends at
    /// NLMSG_DONE.
    /// </summary>
    /// <exception cref="NetlinkException">The kernel refused a message (the first refusal is reported).</exception>
    public async ValueTask RequestAsync<TState>(
        string operation,
        TState state,
        GenericRequestEncoder<TState> encode,
        Func<TState, string> describe,
        MessageHandler? onReply,
        bool dump,
        CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _send.ResetWrittenCount();
            uint first = NextSequence();
            var writer = new NetlinkWriter(_send);
            int count = encode(ref writer, state, first);
            writer.Flush();
            if (count < 1)
            {
                return;
            }

            // Reserve the sequence numbers the encoder used beyond the first.
            for (int i = 1; i < count; i++)
            {
                NextSequence();
            }

            SendInDatagrams(_send.WrittenMemory);
            var outcome = new Outcome(first, count, dump);
            while (!outcome.Complete)
            {
                int received = await ReceiveAsync(cancellationToken).ConfigureAwait(false);
                Collect(_receive.AsSpan(0, received), ref outcome, onReply);
            }

            if (outcome.FirstError is NetlinkError error)
            {
                throw new NetlinkException(operation, error.Errno, Errno.Name(error.Errno), error.Sequence, error.AckMessage, error.AckOffset, describe(state));
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _socket.Dispose();
    }

    private uint NextSequence()
    {
        uint next = unchecked(++_sequence);
        return next == 0 ? unchecked(++_sequence) : next;
    }

    private void SendInDatagrams(ReadOnlyMemory<byte> messages)
    {
        ReadOnlySpan<byte> all = messages.Span;
        int start = 0;
        int end = 0;
        var reader = new NetlinkMessageReader(all);
        while (reader.TryRead(out _))
        {
            int next = all.Length - reader.Remaining;
            if (next - start > MaxDatagramBytes && end > start)
            {
                _socket.Send(all[start..end]);
                start = end;
            }

            end = next;
        }

        if (end > start)
        {
            _socket.Send(all[start..end]);
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
            throw new NetlinkException("NLMSG_OVERRUN", Errno.ENOBUFS, "ENOBUFS", 0, e.Message, null, "the reply was dropped by the kernel");
        }
    }

    private static void Collect(ReadOnlySpan<byte> datagram, ref Outcome outcome, MessageHandler? onReply)
    {
        var reader = new NetlinkMessageReader(datagram);
        while (reader.TryRead(out NetlinkMessage message))
        {
            if (!outcome.Owns(message.Sequence))
            {
                continue; // a late reply to an earlier, cancelled request
            }

            if (message.IsDone)
            {
                NetlinkError done = NetlinkError.ParseDone(message);
                outcome.Record(done.IsAck ? null : done);
                outcome.Finish();
                continue;
            }

            if (message.IsError)
            {
                NetlinkError error = NetlinkError.Parse(message);
                outcome.Record(error.IsAck ? null : error);
                if (!outcome.IsDump || !error.IsAck)
                {
                    outcome.Acknowledge();
                }

                continue;
            }

            if (message.Type >= NetlinkHeader.NLMSG_MIN_TYPE)
            {
                onReply?.Invoke(message.Type, message.Payload);
            }
        }

        if (reader.Remaining != 0)
        {
            ThrowHelper.ThrowMalformed($"a datagram ends with {reader.Remaining} bytes that are not a whole netlink message");
        }
    }

    /// <summary>Handles one reply message (type and payload after the nlmsghdr).</summary>
    internal delegate void MessageHandler(ushort type, ReadOnlySpan<byte> payload);

    /// <summary>What has come back for the request's sequence numbers so far.</summary>
    private struct Outcome(uint first, int count, bool dump)
    {
        private int _acknowledged;
        private bool _done;

        public readonly bool IsDump => dump;

        public NetlinkError? FirstError { get; private set; }

        /// <summary>A dump ends at NLMSG_DONE (or an error); plain requests when every message is acknowledged.</summary>
        public readonly bool Complete => dump ? _done : _acknowledged >= count;

        public readonly bool Owns(uint sequence) => unchecked(sequence - first) < (uint)count;

        public void Record(NetlinkError? error) => FirstError ??= error;

        public void Acknowledge()
        {
            _acknowledged++;
            if (dump)
            {
                _done = true; // a dump that fails before it starts ends with its error instead of NLMSG_DONE
            }
        }

        public void Finish() => _done = true;
    }
}
