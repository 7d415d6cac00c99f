using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Flannel.Agent.Probing;

/// <summary>
/// The probe instruments, on the agent's <c>Flannel</c> meter with its <c>agent</c> tag. Exported to Prometheus
/// they read <c>flannel_peer_reachable{path,state}</c>, <c>flannel_peer_rtt_seconds</c>,
/// <c>flannel_peer_transitions_total{path,to}</c> and <c>flannel_peer_probes_total{path,result}</c>.
/// </summary>
/// <remarks>
/// <c>flannel.peer.reachable</c> counts peers per path and state, so its series do not grow with the cluster; with
/// <see cref="FabricProbeOptions.PerPeerMetrics"/> it carries a <c>peer</c> tag instead (value 1 for the peer's
/// current state), whose sum over peers is the same count.
/// </remarks>
public sealed class FabricMetrics : IDisposable
{
    /// <summary>The meter name, shared with the agent's other instruments.</summary>
    public const string MeterName = "Flannel";

    /// <summary>Gauge: peers per path and state.</summary>
    public const string ReachableName = "flannel.peer.reachable";

    /// <summary>Histogram: round-trip time of replies, in seconds, per path.</summary>
    public const string RttName = "flannel.peer.rtt";

    /// <summary>Counter: path state changes, per path and new state.</summary>
    public const string TransitionsName = "flannel.peer.transitions";

    /// <summary>Counter: echo requests sent, per path and result.</summary>
    public const string ProbesName = "flannel.peer.probes";

    // 100 µs (same host) to 1 s (the default timeout): a LAN hop is ~0.1–1 ms, a WAN link tens of ms.
    private static readonly double[] s_rttBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly ConcurrentDictionary<string, Func<IEnumerable<PeerPathState>>> _agents = new(StringComparer.Ordinal);
    private readonly Histogram<double> _rtt;
    private readonly Counter<long> _transitions;
    private readonly Counter<long> _probes;

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/>, or on an own meter when null.</summary>
    public FabricMetrics(IMeterFactory? meterFactory = null)
    {
        if (meterFactory is null)
        {
            _meter = new Meter(MeterName);
            _ownsMeter = true;
        }
        else
        {
            _meter = meterFactory.Create(MeterName);
        }

        _meter.CreateObservableGauge(ReachableName, Observe, "{peer}", "Peers per probe path (overlay, underlay) and state (reachable, unreachable, unknown).");
        _rtt = _meter.CreateHistogram(RttName, "s", "Round-trip time of probe replies, per path.", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = s_rttBuckets });
        _transitions = _meter.CreateCounter<long>(TransitionsName, "{transition}", "Times a path to a peer changed state, per path and new state.");
        _probes = _meter.CreateCounter<long>(ProbesName, "{probe}", "Echo requests sent to peers, per path and result.");
    }

    /// <summary>Registers an agent's probe states for the gauge; the returned handle unregisters them.</summary>
    internal IDisposable Register(string agentName, Func<IEnumerable<PeerPathState>> states)
    {
        _agents[agentName] = states;
        return new Registration(this, agentName);
    }

    internal void RecordProbe(string agentName, string path, EchoResult result)
    {
        var tags = new TagList { { "agent", agentName }, { "path", path }, { "result", ResultName(result.Outcome) } };
        _probes.Add(1, tags);
        if (result.Succeeded)
        {
            _rtt.Record(result.RoundTripTime.TotalSeconds, new TagList { { "agent", agentName }, { "path", path } });
        }
    }

    internal void RecordTransition(string agentName, string path, Reachability to) =>
        _transitions.Add(1, new TagList { { "agent", agentName }, { "path", path }, { "to", StateName(to) } });

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    internal static string StateName(Reachability state) => state switch
    {
        Reachability.Reachable => "reachable",
        Reachability.Unreachable => "unreachable",
        _ => "unknown",
    };

    private static string ResultName(EchoOutcome outcome) => outcome switch
    {
        EchoOutcome.Reply => "reply",
        EchoOutcome.Timeout => "timeout",
        EchoOutcome.Unreachable => "unreachable",
        EchoOutcome.Prohibited => "prohibited",
        _ => "send_failed",
    };

    private IEnumerable<Measurement<int>> Observe()
    {
        foreach ((string agent, Func<IEnumerable<PeerPathState>> states) in _agents)
        {
            var counts = new Dictionary<(string Path, Reachability State), int>();
            foreach (string path in (ReadOnlySpan<string>)["overlay", "underlay"])
            {
                foreach (Reachability state in (ReadOnlySpan<Reachability>)[Reachability.Reachable, Reachability.Unreachable, Reachability.Unknown])
                {
                    counts[(path, state)] = 0;
                }
            }

            bool perPeer = false;
            foreach (PeerPathState state in states())
            {
                if (state.Peer is not null)
                {
                    perPeer = true;
                    yield return new Measurement<int>(1, new TagList { { "agent", agent }, { "path", state.Path }, { "state", StateName(state.State) }, { "peer", state.Peer } });
                }
                else
                {
                    counts[(state.Path, state.State)]++;
                }
            }

            if (!perPeer)
            {
                // Every combination, zeros included, so a dashboard sees "0 unreachable" rather than no series.
                foreach (((string path, Reachability state), int count) in counts)
                {
                    yield return new Measurement<int>(count, new TagList { { "agent", agent }, { "path", path }, { "state", StateName(state) } });
                }
            }
        }
    }

    /// <summary>One peer's path state as the gauge counts it; <see cref="Peer"/> is set only with per-peer tags.</summary>
    internal readonly record struct PeerPathState(string Path, Reachability State, string? Peer);

    private sealed class Registration(FabricMetrics owner, string agentName) : IDisposable
    {
        public void Dispose() => owner._agents.TryRemove(agentName, out _);
    }
}
