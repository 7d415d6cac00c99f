using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Flannel.Agent.Probing;
using Flannel.Agent.Status;
using Flannel.Backends;
using Flannel.Subnets;
using Flannel.Testing.FakeNetlink;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Flannel.Agent.Tests.Probing;

/// <summary>
/// The prober end to end against a fake network (a fake <see cref="IEchoProber"/> that answers per destination) and
/// a fake clock: states, the overlay-only signature logged once, metrics, and flood protection of the log.
/// </summary>
public sealed class FabricProberTests
{
    private static readonly IPAddress Us = IPAddress.Parse("10.244.1.0");
    private static readonly IPAddress UsUnderlay = IPAddress.Parse("198.18.0.11");

    private static Lease Peer(int n) => new()
    {
        Subnet = IPNetwork.Parse($"10.244.{n}.0/24"),
        Attributes = new LeaseAttributes { PublicIP = IPAddress.Parse($"198.18.0.{10 + n}"), BackendType = "vxlan" },
    };

    private static ProbeEndpoints Endpoints => new(
        Us,
        UsUnderlay,
        (lease, family) => family == AddressFamily.InterNetwork ? lease.Subnet?.BaseAddress : null,
        "the vxlan UDP port (8472) filtered between the nodes, an MTU mismatch on the path, or a missing or stale neighbour/FDB entry");

    private sealed class Harness : IDisposable
    {
        public Harness(FabricProbeOptions? options = null)
        {
            Options = options ?? new FabricProbeOptions { Interval = TimeSpan.FromSeconds(3), Timeout = TimeSpan.FromMilliseconds(100) };
            Metrics = new FabricMetrics(Meters);
            Prober = new FabricProber("node1", Options, Network, Time, Logger, Metrics);
            Prober.SetEndpoints(Endpoints);
        }

        public FabricProbeOptions Options { get; }

        public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));

        public FakeNetwork Network { get; } = new();

        public ListLogger Logger { get; } = new();

        public MeterCapture Meters { get; } = new();

        public FabricMetrics Metrics { get; }

        public FabricProber Prober { get; }

        public PathStatus? Overlay(int n) => Prober.Snapshot()[Peer(n).Key].Overlay;

        public PathStatus? Underlay(int n) => Prober.Snapshot()[Peer(n).Key].Underlay;

        /// <summary>Advances the fake clock in steps until <paramref name="condition"/> holds (bounded in real time).</summary>
        public async Task<TimeSpan> RunUntilAsync(Func<bool> condition, string what, TimeSpan? step = null, TimeSpan? realTimeout = null)
        {
            TimeSpan advanced = TimeSpan.Zero;
            DateTime deadline = DateTime.UtcNow + (realTimeout ?? TimeSpan.FromSeconds(20));
            while (!condition())
            {
                Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}; log: {string.Join(" | ", Logger.Lines)}");
                TimeSpan s = step ?? TimeSpan.FromMilliseconds(100);
                Time.Advance(s);
                advanced += s;
                await Task.Delay(2, TestContext.Current.CancellationToken);
            }

            return advanced;
        }

        public Dictionary<(string Path, string State), int> Gauge()
        {
            var values = new Dictionary<(string, string), int>();
            using var listener = new MeterListener();
            listener.InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter.Scope, Meters) && instrument.Name == FabricMetrics.ReachableName)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            listener.SetMeasurementEventCallback<int>((_, value, tags, _) =>
            {
                string path = "", state = "";
                foreach (KeyValuePair<string, object?> tag in tags)
                {
                    if (tag.Key == "path") { path = (string)tag.Value!; }
                    if (tag.Key == "state") { state = (string)tag.Value!; }
                }

                values[(path, state)] = values.GetValueOrDefault((path, state)) + value;
            });
            listener.Start();
            listener.RecordObservableInstruments();
            return values;
        }

        public void Dispose()
        {
            Prober.Dispose();
            Metrics.Dispose();
            Meters.Dispose();
        }
    }

    /// <summary>Answers instantly, per destination: a reply unless told otherwise.</summary>
    private sealed class FakeNetwork : IEchoProber
    {
        private readonly Dictionary<IPAddress, EchoResult> _broken = [];
        private readonly Lock _lock = new();

        private readonly List<(IPAddress Destination, IPAddress? Source)> _sent = [];

        /// <summary>A copy of what was sent so far (the prober adds from other threads).</summary>
        public List<(IPAddress Destination, IPAddress? Source)> Sent
        {
            get
            {
                lock (_lock)
                {
                    return [.. _sent];
                }
            }
        }

        public void Break(IPAddress destination, EchoResult? result = null)
        {
            lock (_lock)
            {
                _broken[destination] = result ?? EchoResult.TimedOut;
            }
        }

        public void Heal(IPAddress destination)
        {
            lock (_lock)
            {
                _broken.Remove(destination);
            }
        }

        public ValueTask<EchoResult> EchoAsync(IPAddress destination, IPAddress? source, TimeSpan timeout, CancellationToken cancellationToken)
        {
            lock (_lock)
            {
                _sent.Add((destination, source));
                return ValueTask.FromResult(_broken.TryGetValue(destination, out EchoResult r) ? r : EchoResult.Reply(TimeSpan.FromMilliseconds(0.3)));
            }
        }
    }

    [Fact]
    public async Task Every_peer_is_probed_over_both_paths_from_the_right_sources()
    {
        using var h = new Harness();
        h.Prober.SetPeers([Peer(2), Peer(3)]);
        using var stop = new CancellationTokenSource();
        Task run = h.Prober.RunAsync(stop.Token);

        await h.RunUntilAsync(() => h.Overlay(2)?.State == Reachability.Reachable && h.Overlay(3)?.State == Reachability.Reachable, "both peers reachable");

        Assert.Contains((IPAddress.Parse("10.244.2.0"), Us), h.Network.Sent);
        Assert.Contains((IPAddress.Parse("198.18.0.12"), UsUnderlay), h.Network.Sent);
        Assert.Contains((IPAddress.Parse("10.244.3.0"), Us), h.Network.Sent);
        Assert.Contains((IPAddress.Parse("198.18.0.13"), UsUnderlay), h.Network.Sent);
        PathStatus overlay = h.Overlay(2)!;
        Assert.Equal("10.244.2.0", overlay.Target);
        Assert.Equal("10.244.1.0", overlay.Source);
        Assert.Equal("reply 0.3 ms", overlay.Last);
        Assert.Equal(0.3, overlay.RttMs!.Avg);
        Assert.Equal(2, h.Gauge()[("overlay", "reachable")]);
        Assert.Equal(0, h.Gauge()[("overlay", "unreachable")]);
        Assert.True(h.Meters.Sum(FabricMetrics.ProbesName, "result", "reply") >= 4);

        await stop.CancelAsync();
        await run;
    }

    [Fact]
    public async Task A_broken_overlay_is_detected_within_one_interval_logged_once_with_causes_and_recovers()
    {
        using var h = new Harness();
        h.Prober.KernelStatusOf = _ => new PeerKernelStatus(PeerKernelState.Programmed);
        h.Prober.SetPeers([Peer(2), Peer(3)]);
        using var stop = new CancellationTokenSource();
        Task run = h.Prober.RunAsync(stop.Token);
        await h.RunUntilAsync(() => h.Overlay(2)?.State == Reachability.Reachable && h.Overlay(3)?.State == Reachability.Reachable, "both reachable");

        h.Network.Break(IPAddress.Parse("10.244.2.0")); // UDP 8472 dropped between us and node 2
        TimeSpan detection = await h.RunUntilAsync(() => h.Overlay(2)?.State == Reachability.Unreachable, "overlay to peer 2 unreachable");

        // Its next turn (at most one interval) plus two confirmations a second apart.
        Assert.True(detection <= h.Options.Interval + TimeSpan.FromSeconds(3), $"detected after {detection}");
        Assert.Equal(Reachability.Reachable, h.Underlay(2)!.State);
        Assert.Equal(Reachability.Reachable, h.Overlay(3)!.State);
        Assert.Equal(1, h.Gauge()[("overlay", "unreachable")]);
        Assert.Equal(1, h.Meters.Sum(FabricMetrics.TransitionsName, "to", "unreachable"));

        // Stays broken for a while: the overlay-only line appears exactly once.
        await h.RunUntilAsync(() => h.Overlay(2)!.Sent >= 10, "more probes", TimeSpan.FromSeconds(1));
        string[] overlayOnly = [.. h.Logger.Lines.Where(l => l.Contains("answers over the underlay but not over the overlay", StringComparison.Ordinal))];
        Assert.Single(overlayOnly);
        Assert.Contains("10.244.2.0-24 (public IP 198.18.0.12)", overlayOnly[0], StringComparison.Ordinal);
        Assert.Contains("UDP port (8472) filtered", overlayOnly[0], StringComparison.Ordinal);
        Assert.Contains("kernel state here is programmed", overlayOnly[0], StringComparison.Ordinal);

        h.Network.Heal(IPAddress.Parse("10.244.2.0"));
        await h.RunUntilAsync(() => h.Overlay(2)?.State == Reachability.Reachable, "recovery");
        Assert.Equal(0, h.Gauge()[("overlay", "unreachable")]);
        Assert.Contains(h.Logger.Lines, l => l.Contains("reachable again over the overlay", StringComparison.Ordinal));

        await stop.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Five_hundred_peers_going_down_at_once_log_a_bounded_number_of_lines()
    {
        var options = new FabricProbeOptions { Interval = TimeSpan.FromSeconds(5), Timeout = TimeSpan.FromMilliseconds(100) };
        using var h = new Harness(options);
        Lease[] peers = [.. Enumerable.Range(2, 500).Select(n => new Lease
        {
            Subnet = IPNetwork.Parse($"10.{244 + (n / 256)}.{n % 256}.0/24"),
            Attributes = new LeaseAttributes { PublicIP = IPAddress.Parse($"198.19.{n / 256}.{n % 256}") },
        })];
        foreach (Lease peer in peers)
        {
            h.Network.Break(peer.Attributes.PublicIP);
            h.Network.Break(peer.Subnet!.Value.BaseAddress);
        }

        h.Prober.SetPeers(peers);
        using var stop = new CancellationTokenSource();
        Task run = h.Prober.RunAsync(stop.Token);
        // A minute of fake time in 10 ms steps takes about 17 s of real time on an idle machine: a generous real bound.
        TimeSpan took = await h.RunUntilAsync(() => h.Gauge()[("underlay", "unreachable")] == 500, "all unreachable", TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(3));

        // 1,000 path changes (500 peers, two paths) within a minute: the first 20 are logged.
        Assert.True(took < TimeSpan.FromMinutes(1), $"took {took}");
        Assert.Equal(FabricProber.MaxLogsPerMinute, h.Logger.Lines.Count);
        h.Time.Advance(TimeSpan.FromMinutes(1));
        h.Network.Heal(peers[0].Attributes.PublicIP);
        await h.RunUntilAsync(() => h.Logger.Lines.Any(l => l.Contains("were not logged", StringComparison.Ordinal)), "the summary line", TimeSpan.FromMilliseconds(500));

        await stop.CancelAsync();
        await run;
    }

    [Fact]
    public async Task A_peer_that_leaves_is_no_longer_probed_and_a_changed_address_starts_over()
    {
        using var h = new Harness();
        h.Prober.SetPeers([Peer(2), Peer(3)]);
        using var stop = new CancellationTokenSource();
        Task run = h.Prober.RunAsync(stop.Token);
        await h.RunUntilAsync(() => h.Underlay(3)?.State == Reachability.Reachable, "peer 3 reachable");

        Lease moved = Peer(3) with { Attributes = Peer(3).Attributes with { PublicIP = IPAddress.Parse("198.18.0.99") } };
        h.Prober.SetPeers([moved]);
        Assert.Equal(Reachability.Unknown, h.Underlay(3)!.State);
        Assert.Equal("198.18.0.99", h.Underlay(3)!.Target);
        Assert.False(h.Prober.Snapshot().ContainsKey(Peer(2).Key));
        int sentTo2 = h.Network.Sent.Count(s => s.Destination.Equals(IPAddress.Parse("198.18.0.12")));
        await h.RunUntilAsync(() => h.Underlay(3)?.State == Reachability.Reachable, "moved peer reachable");
        h.Time.Advance(TimeSpan.FromSeconds(10));
        await Task.Delay(20, TestContext.Current.CancellationToken);
        Assert.Equal(sentTo2, h.Network.Sent.Count(s => s.Destination.Equals(IPAddress.Parse("198.18.0.12"))));

        await stop.CancelAsync();
        await run;
    }

    [Fact]
    public async Task On_the_system_clock_the_run_loop_wakes_once_per_batch_not_once_per_probe_and_never_spins()
    {
        // 200 peers a second are due every 5 ms. The loop once woke for each of them (and before that spun through
        // the last fraction of a millisecond before each, since the system timer truncates to whole milliseconds).
        // Now the probes due within one batch window go out together.
        var options = new FabricProbeOptions { Interval = TimeSpan.FromSeconds(1), Timeout = TimeSpan.FromMilliseconds(100) };
        var network = new FakeNetwork();
        using var meters = new MeterCapture();
        using var metrics = new FabricMetrics(meters);
        using var prober = new FabricProber("n", options, network, TimeProvider.System, new ListLogger(), metrics);
        prober.SetEndpoints(Endpoints);
        prober.SetPeers(Enumerable.Range(2, 200).Select(Peer));
        using var stop = new CancellationTokenSource();
        Task run = prober.RunAsync(stop.Token);

        await Task.Delay(TimeSpan.FromSeconds(1.5), TestContext.Current.CancellationToken);
        await stop.CancelAsync();
        await run;

        int probed = network.Sent.Count / 2;
        long waits = prober.Waits;
        Assert.True(probed >= 100, $"only {probed} peers probed in 1.5 s");
        // 1.5 s / 100 ms = 15 batches, twice that for timers that fire early or wake-ups in between; one wait per
        // probe would be 200 or more.
        long batches = (long)Math.Ceiling(TimeSpan.FromSeconds(1.5) / FabricProber.BatchWindow);
        Assert.True(waits <= (2 * batches) + 10, $"{waits} waits for {probed} probes");
    }

    [Fact]
    public void Per_peer_metrics_carry_the_peer_tag_instead_of_counts()
    {
        using var meters = new MeterCapture();
        using var metrics = new FabricMetrics(meters);
        using var prober = new FabricProber("n", new FabricProbeOptions { PerPeerMetrics = true }, new FakeNetwork(), TimeProvider.System, new ListLogger(), metrics);
        prober.SetEndpoints(Endpoints);
        prober.SetPeers([Peer(2)]);
        var peers = new List<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, meters) && instrument.Name == FabricMetrics.ReachableName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<int>((_, value, tags, _) =>
        {
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == "peer")
                {
                    peers.Add($"{tag.Value}={value}");
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        Assert.Equal(["10.244.2.0-24=1", "10.244.2.0-24=1"], peers); // overlay and underlay, state unknown
    }

    internal sealed class ListLogger : ILogger
    {
        private readonly Lock _lock = new();
        private readonly List<string> _lines = [];

        public IReadOnlyList<string> Lines
        {
            get
            {
                lock (_lock)
                {
                    return [.. _lines];
                }
            }
        }

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_lock)
            {
                _lines.Add($"{logLevel}: {formatter(state, exception)}");
            }
        }
    }
}
