using Flannel.Agent.Probing;

namespace Flannel.Agent.Tests.Probing;

/// <summary>A path's state machine: thresholds, confirmation requests, flapping suppression, RTT and loss.</summary>
public sealed class PathHealthTests
{
    private static readonly DateTimeOffset T0 = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly EchoResult Ok = EchoResult.Reply(TimeSpan.FromMilliseconds(0.5));
    private static readonly EchoResult Lost = EchoResult.TimedOut;

    private static FabricProbeOptions Options => new()
    {
        FailureThreshold = 3,
        RecoveryThreshold = 2,
        FlapThreshold = 4,
        FlapWindow = TimeSpan.FromMinutes(10),
        HoldDown = TimeSpan.FromMinutes(2),
        Window = 10,
    };

    private static readonly System.Net.IPAddress Peer = System.Net.IPAddress.Parse("198.18.0.2");

    private static PathHealth NewPath() => new(Options, Peer, null);

    [Fact]
    public void A_path_knows_its_target_and_has_no_last_result_or_counts_before_its_first_probe()
    {
        var path = new PathHealth(Options, Peer, System.Net.IPAddress.Parse("198.18.0.1"));
        Assert.True(path.Targets(System.Net.IPAddress.Parse("198.18.0.2"), System.Net.IPAddress.Parse("198.18.0.1")));
        Assert.False(path.Targets(Peer, null));
        Assert.False(path.Targets(System.Net.IPAddress.Parse("198.18.0.3"), System.Net.IPAddress.Parse("198.18.0.1")));
        Assert.Equal((null, null, 0L, 0L), (path.LastResult, path.LastProbeAt, path.Sent, path.Received));

        path.Record(Lost, T0);
        path.Record(Ok, T0.AddSeconds(60));
        Assert.Equal((Ok, T0.AddSeconds(60), 2L, 1L), (path.LastResult, path.LastProbeAt, path.Sent, path.Received));
    }

    [Fact]
    public void First_reply_makes_an_unknown_path_reachable()
    {
        var path = NewPath();
        Assert.Equal(Reachability.Unknown, path.State);
        PathTransition? t = path.Record(Ok, T0);
        Assert.Equal(new PathTransition(Reachability.Unknown, Reachability.Reachable, T0, false), t);
        Assert.Equal(T0, path.Since);
    }

    [Fact]
    public void One_lost_probe_asks_for_confirmation_but_changes_nothing()
    {
        var path = NewPath();
        path.Record(Ok, T0);
        Assert.Null(path.Record(Lost, T0.AddSeconds(60)));
        Assert.True(path.NeedsConfirmation);
        Assert.Null(path.Record(Ok, T0.AddSeconds(61)));
        Assert.False(path.NeedsConfirmation);
        Assert.Equal(Reachability.Reachable, path.State);
        Assert.Equal(T0, path.Since);
    }

    [Fact]
    public void Three_consecutive_failures_make_it_unreachable_and_two_replies_bring_it_back()
    {
        var path = NewPath();
        path.Record(Ok, T0);
        Assert.Null(path.Record(Lost, T0.AddSeconds(60)));
        Assert.Null(path.Record(Lost, T0.AddSeconds(61)));
        Assert.Equal(Reachability.Unreachable, path.Record(Lost, T0.AddSeconds(62))?.To);
        Assert.False(path.NeedsConfirmation);

        Assert.Null(path.Record(Ok, T0.AddSeconds(120)));
        Assert.True(path.NeedsConfirmation);
        Assert.Equal(Reachability.Reachable, path.Record(Ok, T0.AddSeconds(121))?.To);
        Assert.Equal(T0.AddSeconds(121), path.Since);
    }

    [Fact]
    public void An_unknown_path_that_never_answers_becomes_unreachable_after_the_threshold()
    {
        var path = NewPath();
        Assert.Null(path.Record(Lost, T0));
        Assert.True(path.NeedsConfirmation);
        Assert.Null(path.Record(Lost, T0.AddSeconds(1)));
        Assert.Equal(new PathTransition(Reachability.Unknown, Reachability.Unreachable, T0.AddSeconds(2), false), path.Record(Lost, T0.AddSeconds(2)));
    }

    [Fact]
    public void Alternating_loss_never_changes_the_state()
    {
        var path = NewPath();
        path.Record(Ok, T0);
        for (int i = 1; i <= 100; i++)
        {
            Assert.Null(path.Record(i % 2 == 0 ? Ok : Lost, T0.AddSeconds(i)));
        }

        Assert.Equal(Reachability.Reachable, path.State);
        Assert.Equal(50.0, path.Statistics().LossPercent);
    }

    [Fact]
    public void A_flapping_path_is_flagged_and_held_down_before_it_counts_as_reachable()
    {
        var path = NewPath();
        DateTimeOffset now = T0;
        path.Record(Ok, now);

        // Two down/up cycles within the flap window: four transitions.
        var transitions = new List<PathTransition>();
        for (int cycle = 0; cycle < 2; cycle++)
        {
            for (int i = 0; i < 3; i++)
            {
                now = now.AddSeconds(5);
                if (path.Record(Lost, now) is { } down)
                {
                    transitions.Add(down);
                }
            }

            for (int i = 0; i < 2; i++)
            {
                now = now.AddSeconds(5);
                if (path.Record(Ok, now) is { } up)
                {
                    transitions.Add(up);
                }
            }
        }

        Assert.Equal(4, transitions.Count);
        Assert.False(transitions[2].Flapping);
        Assert.True(transitions[3].Flapping); // the fourth change within 10 min
        Assert.True(path.IsFlapping(now));

        // Down again; now two replies are not enough: it must answer for the 2-minute hold-down.
        for (int i = 0; i < 3; i++)
        {
            now = now.AddSeconds(5);
            path.Record(Lost, now);
        }

        Assert.Equal(Reachability.Unreachable, path.State);
        DateTimeOffset streakStart = now.AddSeconds(5);
        for (now = streakStart; now < streakStart.AddMinutes(2); now = now.AddSeconds(10))
        {
            Assert.Null(path.Record(Ok, now));
            Assert.Equal(Reachability.Unreachable, path.State);
        }

        Assert.Equal(Reachability.Reachable, path.Record(Ok, streakStart.AddMinutes(2))?.To);

        // After the flap window passes without changes the path settles.
        Assert.False(path.IsFlapping(now.AddMinutes(11)));
    }

    [Fact]
    public void Rtt_and_loss_cover_the_window_only()
    {
        var path = NewPath(); // window 10
        for (int i = 0; i < 10; i++)
        {
            path.Record(Lost, T0.AddSeconds(i));
        }

        for (int i = 1; i <= 10; i++)
        {
            path.Record(EchoResult.Reply(TimeSpan.FromMilliseconds(i)), T0.AddSeconds(10 + i));
        }

        PathStatistics figures = path.Statistics();
        Assert.Equal(10, figures.Samples);
        Assert.Equal(0.0, figures.LossPercent);
        Assert.Equal((1.0, 5.5, 10.0, 10.0), (figures.RttMinMilliseconds, figures.RttAvgMilliseconds, figures.RttMaxMilliseconds, figures.RttLastMilliseconds));
        Assert.Equal((20L, 10L), (path.Sent, path.Received));
    }

    [Fact]
    public void Rtt_figures_keep_their_microseconds_and_lost_probes_count_as_loss_not_as_zero()
    {
        // The window keeps one float per result (NaN for a lost probe) to keep two paths per peer small; the figures
        // are reported in ms with three decimals, which a float holds for any RTT up to the probe timeout.
        var path = NewPath(); // window 10
        double[] rtts = [0.123, 12.345, 999.999, 0.001];
        foreach (double rtt in rtts)
        {
            path.Record(EchoResult.Reply(TimeSpan.FromTicks((long)Math.Round(rtt * TimeSpan.TicksPerMillisecond))), T0);
            path.Record(Lost, T0);
        }

        PathStatistics figures = path.Statistics();
        Assert.Equal(8, figures.Samples);
        Assert.Equal(50.0, figures.LossPercent);
        Assert.Equal(
            (0.001, Math.Round(rtts.Average(), 3), 999.999, (double?)null),
            (figures.RttMinMilliseconds, figures.RttAvgMilliseconds, figures.RttMaxMilliseconds, figures.RttLastMilliseconds));
    }
}
