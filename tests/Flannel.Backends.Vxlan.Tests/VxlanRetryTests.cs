using System.Collections.Concurrent;
using Flannel.Netlink;
using Flannel.Testing.FakeNetlink;
using Microsoft.Extensions.Logging;
using static Flannel.Backends.Vxlan.Tests.VxlanHarness;

namespace Flannel.Backends.Vxlan.Tests;

/// <summary>
/// The retry storm of issue 11 §1: a peer the kernel refuses halfway (its route goes in, its FDB entry does not) is
/// withdrawn, and that withdrawal must not read as drift. It is retried on its own backoff, warned about at a bounded
/// rate, and counted; the other peers never notice.
/// </summary>
public sealed class VxlanRetryTests
{
    private static bool RefusedFdb(FakeNetlinkOperation op) => op.Name == "ReplaceFdbEntry" && op.Spec is FdbEntrySpec f && f.MacAddress == MacOf(3);

    [Fact]
    public async Task A_refused_peer_is_retried_a_bounded_number_of_times_per_minute_and_the_others_are_unaffected()
    {
        var log = new ListLogger();
        await using VxlanHarness node = await StartAsync(logger: log);
        IDisposable fault = node.Netlink.InjectFault(RefusedFdb, errno: 95); // EOPNOTSUPP, the multicast-MAC refusal

        await node.SendAsync(Added(Peer(2)), Added(Peer(3)), Added(Peer(4)));
        await WaitUntilAsync(
            () => node.IsProgrammed(2) && node.IsProgrammed(4) && node.HasNothingFor(3) && node.Meters.Sum("flannel.backend.peers.refused") == 1,
            "the good peers are programmed and peer 3 is withdrawn and counted as refused");

        // One minute of fake time, in 250 ms steps: the withdrawal's route deletion must not start a reconciliation,
        // and the refused peer is retried on its backoff (1, 2, 4, 8, 16, 32 s ± 20 %), not in a loop.
        int attemptsBefore = FdbAttempts(node, 3);
        for (int i = 0; i < 240; i++)
        {
            node.Time.Advance(TimeSpan.FromMilliseconds(250));
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }

        await Task.Delay(200, TestContext.Current.CancellationToken);
        int attempts = FdbAttempts(node, 3) - attemptsBefore;

        // 5 or 6 on an idle machine. A loaded one runs a due retry a little late in fake time, which pushes the later
        // ones back, so only the bounds are asserted: retried at all, and far from a storm (without backoff: 200+).
        Assert.InRange(attempts, 2, 8);
        Assert.Equal(0, node.Meters.Sum("flannel.backend.reconciliations", "reason", "route-deleted"));

        // The others were programmed once and never touched again.
        Assert.Equal(1, FdbAttempts(node, 2));
        Assert.Equal(1, FdbAttempts(node, 4));
        Assert.True(node.IsProgrammed(2) && node.IsProgrammed(4));

        // The warning names the peer and the refusal once; repeats are suppressed (and counted in the next warning).
        string[] warnings = log.Warnings.Where(w => w.Contains("10.244.3.0-24", StringComparison.Ordinal)).ToArray();
        Assert.Single(warnings);
        Assert.Contains("kernel refused to add fdb", warnings[0], StringComparison.OrdinalIgnoreCase);

        // Once the kernel accepts it, the next due retry programs it and it stops counting as refused.
        fault.Dispose();
        await node.WaitAdvancingAsync(
            () => node.IsProgrammed(3) && node.Meters.Sum("flannel.backend.peers.refused") == 0,
            TimeSpan.FromSeconds(5),
            "peer 3 is programmed on a later retry");
    }

    [Fact]
    public async Task A_changed_lease_of_a_refused_peer_is_tried_at_once()
    {
        await using VxlanHarness node = await StartAsync();
        using IDisposable fault = node.Netlink.InjectFault(RefusedFdb, errno: 95);
        await node.SendAsync(Added(Peer(3)));
        await WaitUntilAsync(() => FdbAttempts(node, 3) == 1 && node.Meters.Sum("flannel.backend.peers.refused") == 1, "peer 3 is refused");

        // New attributes (another MAC) are tried at once, without waiting for the backoff. (Renewals never reach a
        // backend: the agent's lease set drops them.)
        await node.SendAsync(Added(Peer(3, mac: "0e:00:00:00:00:33")));
        await WaitUntilAsync(() => node.IsProgrammed(3, MacAddress.Parse("0e:00:00:00:00:33")) && node.Meters.Sum("flannel.backend.peers.refused") == 0, "peer 3 with its new MAC is programmed");
    }

    private static int FdbAttempts(VxlanHarness node, int peer) =>
        node.Netlink.Calls.Count(c => c.Name == "ReplaceFdbEntry" && c.Spec is FdbEntrySpec f && f.MacAddress == MacOf(peer));

    private sealed class ListLogger : ILogger<VxlanBackend>
    {
        private readonly ConcurrentQueue<(LogLevel Level, string Message)> _entries = new();

        public IEnumerable<string> Warnings => _entries.Where(e => e.Level >= LogLevel.Warning).Select(e => e.Message);

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _entries.Enqueue((logLevel, formatter(state, exception)));
    }
}
