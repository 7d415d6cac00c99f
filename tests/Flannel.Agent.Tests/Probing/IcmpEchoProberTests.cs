using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Flannel.Agent.Probing;
using Flannel.Netlink.Icmp;
using Microsoft.Extensions.Time.Testing;

namespace Flannel.Agent.Tests.Probing;

/// <summary>The prober's matching of answers to requests, against a scripted socket and a fake clock.</summary>
public sealed class IcmpEchoProberTests
{
    private static readonly IPAddress Peer = IPAddress.Parse("10.244.2.0");
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed class ScriptedChannel : IcmpEchoProber.IEchoChannel
    {
        private readonly Channel<IcmpMessage> _inbox = Channel.CreateUnbounded<IcmpMessage>();

        public List<(IPAddress Destination, ushort Sequence)> Sent { get; } = [];

        public Func<IPAddress, int> SendFailure { get; set; } = _ => 0;

        public void Deliver(IcmpMessage message) => _inbox.Writer.TryWrite(message);

        public bool TrySendEcho(IPAddress destination, IPAddress? source, ushort sequence, out IcmpSendError error)
        {
            if (SendFailure(destination) is not 0 and int errno)
            {
                error = new IcmpSendError(errno);
                return false;
            }

            lock (Sent)
            {
                Sent.Add((destination, sequence));
            }

            error = default;
            return true;
        }

        public ValueTask<IcmpMessage> ReceiveAsync(CancellationToken cancellationToken) => _inbox.Reader.ReadAsync(cancellationToken);

        public void Dispose() => _inbox.Writer.TryComplete();
    }

    private static async Task<(IPAddress Destination, ushort Sequence)> SentAsync(ScriptedChannel channel, int index)
    {
        for (int i = 0; i < 1000; i++)
        {
            lock (channel.Sent)
            {
                if (channel.Sent.Count > index)
                {
                    return channel.Sent[index];
                }
            }

            await Task.Delay(2, Ct);
        }

        throw new TimeoutException("no request sent");
    }

    [Fact]
    public async Task A_reply_completes_its_request_with_the_round_trip_time()
    {
        var time = new FakeTimeProvider();
        var channel = new ScriptedChannel();
        using var prober = new IcmpEchoProber(_ => channel, time);
        ValueTask<EchoResult> pending = prober.EchoAsync(Peer, null, TimeSpan.FromSeconds(1), Ct);
        (_, ushort sequence) = await SentAsync(channel, 0);

        time.Advance(TimeSpan.FromMilliseconds(3));
        channel.Deliver(new IcmpMessage { Kind = IcmpMessageKind.EchoReply, From = Peer, Sequence = sequence });

        EchoResult result = await pending;
        Assert.Equal(EchoOutcome.Reply, result.Outcome);
        Assert.Equal(TimeSpan.FromMilliseconds(3), result.RoundTripTime);
        Assert.Equal(0, prober.Outstanding);
    }

    [Fact]
    public async Task A_reply_from_another_address_or_for_another_sequence_is_ignored_and_the_request_times_out()
    {
        var time = new FakeTimeProvider();
        var channel = new ScriptedChannel();
        using var prober = new IcmpEchoProber(_ => channel, time);
        ValueTask<EchoResult> pending = prober.EchoAsync(Peer, null, TimeSpan.FromSeconds(1), Ct);
        (_, ushort sequence) = await SentAsync(channel, 0);

        channel.Deliver(new IcmpMessage { Kind = IcmpMessageKind.EchoReply, From = IPAddress.Parse("10.244.9.0"), Sequence = sequence });
        channel.Deliver(new IcmpMessage { Kind = IcmpMessageKind.EchoReply, From = Peer, Sequence = (ushort)(sequence + 1) });
        await Task.Delay(20, Ct);
        Assert.False(pending.IsCompleted);

        time.Advance(TimeSpan.FromSeconds(1));
        EchoResult result = await pending;
        Assert.Equal(EchoOutcome.Timeout, result.Outcome);

        // The late answer to the timed-out request finds nothing to complete and does no harm.
        channel.Deliver(new IcmpMessage { Kind = IcmpMessageKind.EchoReply, From = Peer, Sequence = sequence });
        ValueTask<EchoResult> next = prober.EchoAsync(Peer, null, TimeSpan.FromSeconds(1), Ct);
        (_, ushort nextSequence) = await SentAsync(channel, 1);
        Assert.NotEqual(sequence, nextSequence);
        channel.Deliver(new IcmpMessage { Kind = IcmpMessageKind.EchoReply, From = Peer, Sequence = nextSequence });
        Assert.Equal(EchoOutcome.Reply, (await next).Outcome);
    }

    [Fact]
    public async Task An_icmp_error_quoting_the_request_ends_it_early_with_the_reason()
    {
        var channel = new ScriptedChannel();
        using var prober = new IcmpEchoProber(_ => channel, new FakeTimeProvider());
        ValueTask<EchoResult> pending = prober.EchoAsync(Peer, null, TimeSpan.FromSeconds(1), Ct);
        (_, ushort sequence) = await SentAsync(channel, 0);
        channel.Deliver(new IcmpMessage
        {
            Kind = IcmpMessageKind.DestinationUnreachable,
            Reason = IcmpUnreachableReason.Host,
            From = IPAddress.Parse("198.18.0.254"),
            QuotedDestination = Peer,
            Sequence = sequence,
        });

        EchoResult result = await pending;
        Assert.Equal(EchoOutcome.Unreachable, result.Outcome);
        Assert.Equal("host unreachable (from 198.18.0.254)", result.Detail);
    }

    [Fact]
    public async Task A_refused_send_is_a_result_and_cancellation_cancels()
    {
        var channel = new ScriptedChannel { SendFailure = _ => 101 };
        using var prober = new IcmpEchoProber(_ => channel, new FakeTimeProvider());
        EchoResult refused = await prober.EchoAsync(Peer, null, TimeSpan.FromSeconds(1), Ct);
        Assert.Equal(EchoOutcome.SendFailed, refused.Outcome);
        Assert.Equal("ENETUNREACH: no route to the destination from this source", refused.Detail);

        channel.SendFailure = _ => 0;
        using var cancel = new CancellationTokenSource();
        ValueTask<EchoResult> pending = prober.EchoAsync(Peer, null, TimeSpan.FromSeconds(1), cancel.Token);
        await SentAsync(channel, 0);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await pending);
        Assert.Equal(0, prober.Outstanding);
    }

    [Fact]
    public async Task Sockets_are_opened_per_family_on_first_use_and_an_unopenable_one_is_a_result()
    {
        var opened = new List<AddressFamily>();
        using var prober = new IcmpEchoProber(family =>
        {
            opened.Add(family);
            return family == AddressFamily.InterNetworkV6 ? throw new SocketException((int)SocketError.AccessDenied) : new ScriptedChannel();
        }, new FakeTimeProvider());
        EchoResult v6 = await prober.EchoAsync(IPAddress.Parse("fd00::1"), null, TimeSpan.FromSeconds(1), Ct);
        Assert.Equal(EchoOutcome.SendFailed, v6.Outcome);
        Assert.Contains("CAP_NET_RAW", v6.Detail, StringComparison.Ordinal);
        Task first = prober.EchoAsync(Peer, null, TimeSpan.FromSeconds(1), Ct).AsTask();
        Task second = prober.EchoAsync(Peer, null, TimeSpan.FromSeconds(1), Ct).AsTask();
        Assert.Equal([AddressFamily.InterNetworkV6, AddressFamily.InterNetwork], opened);
        prober.Dispose();
        await Task.WhenAll(first, second);
    }
}
