using Flannel.Agent.Probing;

namespace Flannel.Agent.Tests.Probing;

/// <summary>The probe pacing: every peer once per interval, evenly spread, never a burst, bounded when everything fails.</summary>
public sealed class ProbePlannerTests
{
    private static readonly DateTimeOffset T0 = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static string[] Peers(int count) => [.. Enumerable.Range(0, count).Select(i => $"10.{i / 65536}.{i / 256 % 256}.{i % 256}-24")];

    /// <summary>Drives the planner like the prober does, with a perfect clock: wake at each due time, take what is due.</summary>
    private static List<(DateTimeOffset At, string Peer, bool Confirmation)> Simulate(ProbePlanner planner, TimeSpan duration, Action<DateTimeOffset, string, bool>? onProbe = null)
    {
        var probes = new List<(DateTimeOffset, string, bool)>();
        DateTimeOffset now = T0;
        while (now < T0 + duration)
        {
            while (planner.TryTake(now, out string peer, out bool confirmation))
            {
                probes.Add((now, peer, confirmation));
                onProbe?.Invoke(now, peer, confirmation);
            }

            DateTimeOffset? due = planner.NextDue(now);
            if (due is null)
            {
                break;
            }

            now = due.Value > now ? due.Value : now + TimeSpan.FromMilliseconds(1);
        }

        return probes;
    }

    [Fact]
    public void Five_thousand_peers_over_60_s_are_each_probed_once_at_83_per_second_evenly()
    {
        var planner = new ProbePlanner(new FabricProbeOptions { Interval = TimeSpan.FromSeconds(60) });
        planner.SetPeers(Peers(5000));

        List<(DateTimeOffset At, string Peer, bool Confirmation)> probes = Simulate(planner, TimeSpan.FromSeconds(60));

        Assert.Equal(5000, probes.Count);
        Assert.Equal(5000, probes.Select(p => p.Peer).Distinct().Count());
        Assert.Equal(TimeSpan.FromMilliseconds(12), planner.Spacing);
        // Even: consecutive probes are exactly one spacing apart; no second ever holds more than ceil(5000/60) = 84.
        for (int i = 1; i < probes.Count; i++)
        {
            Assert.Equal(TimeSpan.FromMilliseconds(12), probes[i].At - probes[i - 1].At);
        }

        int busiestSecond = probes.GroupBy(p => (int)(p.At - T0).TotalSeconds).Max(g => g.Count());
        Assert.InRange(busiestSecond, 83, 84);
    }

    [Fact]
    public void The_second_round_probes_the_peers_in_the_same_order_one_interval_later()
    {
        var planner = new ProbePlanner(new FabricProbeOptions { Interval = TimeSpan.FromSeconds(10) });
        planner.SetPeers(Peers(4));
        List<(DateTimeOffset At, string Peer, bool Confirmation)> probes = Simulate(planner, TimeSpan.FromSeconds(20));
        Assert.Equal(8, probes.Count);
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(probes[i].Peer, probes[i + 4].Peer);
            Assert.Equal(TimeSpan.FromSeconds(10), probes[i + 4].At - probes[i].At);
        }
    }

    [Fact]
    public void The_rate_is_capped_and_the_round_stretches_instead()
    {
        var planner = new ProbePlanner(new FabricProbeOptions { Interval = TimeSpan.FromSeconds(1), MaxPeersPerSecond = 100 });
        planner.SetPeers(Peers(1000));
        List<(DateTimeOffset At, string Peer, bool Confirmation)> probes = Simulate(planner, TimeSpan.FromSeconds(5));
        Assert.InRange(probes.Count, 500, 501);
        Assert.True(probes.GroupBy(p => (int)(p.At - T0).TotalSeconds).All(g => g.Count() <= 101));
    }

    [Fact]
    public void A_late_caller_gets_no_catch_up_burst()
    {
        var planner = new ProbePlanner(new FabricProbeOptions { Interval = TimeSpan.FromSeconds(10) });
        planner.SetPeers(Peers(10)); // one per second
        Assert.True(planner.TryTake(T0, out _, out _));

        // The machine stalls for 5 s: one probe is due, not five.
        DateTimeOffset late = T0 + TimeSpan.FromSeconds(5);
        Assert.True(planner.TryTake(late, out _, out _));
        Assert.False(planner.TryTake(late, out _, out _));
        Assert.True(planner.NextDue(late) >= late + TimeSpan.FromSeconds(0.5));
    }

    [Fact]
    public void New_peers_are_probed_next_and_removed_ones_never_again()
    {
        var planner = new ProbePlanner(new FabricProbeOptions { Interval = TimeSpan.FromSeconds(3) });
        planner.SetPeers(["a", "b", "c"]);
        Assert.True(planner.TryTake(T0, out string first, out _));
        Assert.Equal("a", first);

        planner.SetPeers(["a", "c", "z"]); // b left, z joined
        var order = new List<string>();
        DateTimeOffset now = T0;
        for (int i = 0; i < 6; i++)
        {
            now = planner.NextDue(now)!.Value;
            Assert.True(planner.TryTake(now, out string peer, out _));
            order.Add(peer);
        }

        Assert.Equal(["z", "c", "a", "z", "c", "a"], order);
        Assert.Equal(TimeSpan.FromSeconds(1), planner.Spacing);
    }

    [Fact]
    public void Growing_from_one_peer_to_many_does_not_wait_out_the_old_spacing()
    {
        var planner = new ProbePlanner(new FabricProbeOptions { Interval = TimeSpan.FromSeconds(60) });
        planner.SetPeers(["a"]);
        Assert.True(planner.TryTake(T0, out _, out _));
        Assert.Equal(T0 + TimeSpan.FromSeconds(60), planner.NextDue(T0));

        planner.SetPeers(Peers(600));
        Assert.Equal(T0 + TimeSpan.FromSeconds(0.1), planner.NextDue(T0));
    }

    [Fact]
    public void Confirmations_come_after_the_delay_and_never_raise_the_rate_even_when_every_peer_fails()
    {
        var options = new FabricProbeOptions { Interval = TimeSpan.FromSeconds(60), ConfirmDelay = TimeSpan.FromSeconds(1) };
        var planner = new ProbePlanner(options);
        planner.SetPeers(Peers(600)); // 10 per second
        // Every probe fails and asks for a confirmation: the worst case (the underlay switch died).
        List<(DateTimeOffset At, string Peer, bool Confirmation)> probes = Simulate(
            planner,
            TimeSpan.FromSeconds(30),
            (at, peer, confirmation) => planner.Confirm(peer, at + options.ConfirmDelay));

        List<(DateTimeOffset At, string Peer, bool Confirmation)> confirmations = [.. probes.Where(p => p.Confirmation)];
        Assert.NotEmpty(confirmations);
        // Confirmations take regular slots: still exactly one probe every 100 ms, never more than 10 in a second.
        for (int i = 1; i < probes.Count; i++)
        {
            Assert.Equal(TimeSpan.FromMilliseconds(100), probes[i].At - probes[i - 1].At);
        }

        Assert.True(probes.GroupBy(p => (int)(p.At - T0).TotalSeconds).All(g => g.Count() <= 10));

        // The first confirmation is for the first peer, in the first slot after its ConfirmDelay; the ring waited.
        Assert.Equal(probes[0].Peer, confirmations[0].Peer);
        Assert.Equal(probes[0].At + options.ConfirmDelay, confirmations[0].At);
        Assert.True(probes.Count(p => !p.Confirmation) < 300, "the round stretches while confirmations use its slots");
    }

    [Fact]
    public void A_small_cluster_confirms_within_seconds_not_one_spacing_later()
    {
        var planner = new ProbePlanner(new FabricProbeOptions { Interval = TimeSpan.FromSeconds(60) });
        planner.SetPeers(["a", "b"]); // a regular probe every 30 s
        Assert.True(planner.TryTake(T0, out _, out _));
        planner.Confirm("a", T0 + TimeSpan.FromSeconds(1));
        planner.Confirm("a", T0 + TimeSpan.FromSeconds(2)); // asked twice: queued once

        Assert.Equal(T0 + TimeSpan.FromSeconds(1), planner.NextDue(T0));
        Assert.True(planner.TryTake(T0 + TimeSpan.FromSeconds(1), out string peer, out bool confirmation));
        Assert.Equal(("a", true), (peer, confirmation));
        Assert.Equal(T0 + TimeSpan.FromSeconds(30), planner.NextDue(T0 + TimeSpan.FromSeconds(1)));
    }
}
