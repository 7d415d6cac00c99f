using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Flannel.Agent.Metrics;

/// <summary>
/// The agent's instruments on the <c>Flannel</c> meter (System.Diagnostics.Metrics), exported by whatever
/// listener the host wires (OpenTelemetry, <c>dotnet-counters</c>). Every measurement carries an <c>agent</c> tag so
/// that several agents in one process stay distinguishable.
/// </summary>
/// <remarks>
/// Instruments: <c>flannel.peers</c> (remote leases programmed), <c>flannel.lease.age</c> (seconds since the own
/// lease was acquired or renewed), <c>flannel.lease.acquisitions</c> and <c>flannel.lease.renewals</c>,
/// <c>flannel.time_to_ready</c> (start → subnet.env written), <c>flannel.netlink.programmed_objects</c> (successful
/// kernel writes by operation), <c>flannel.netlink.errors</c> (kernel refusals by operation and errno),
/// <c>flannel.lease_watch.restarts</c> (store watch re-lists and reconnects) and
/// <c>flannel.lease_events.apply_duration</c> (time a backend took to program one batch of lease events).
/// Drift repairs, reconciliation passes and device recreations are counted by the backends themselves on the
/// <c>Flannel.Backends</c> meter (<c>flannel.backend.repairs</c>, …). No instrument has a per-peer tag, so the
/// number of series does not grow with the cluster.
/// </remarks>
public sealed class FlannelMetrics : IDisposable
{
    /// <summary>The meter name.</summary>
    public const string MeterName = "Flannel";

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly ConcurrentDictionary<string, AgentGauges> _agents = new(StringComparer.Ordinal);
    private readonly Counter<long> _programmedObjects;
    private readonly Counter<long> _netlinkErrors;
    private readonly Counter<long> _watchRestarts;
    private readonly Counter<long> _leaseAcquisitions;
    private readonly Counter<long> _leaseRenewals;
    private readonly Counter<long> _rejectedLeases;
    private readonly Histogram<double> _applyDuration;

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/>, or on an own meter when null.</summary>
    public FlannelMetrics(IMeterFactory? meterFactory = null)
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

        _programmedObjects = _meter.CreateCounter<long>("flannel.netlink.programmed_objects", "{object}", "Kernel objects (routes, neighbours, FDB entries, addresses, links) written successfully.");
        _netlinkErrors = _meter.CreateCounter<long>("flannel.netlink.errors", "{error}", "Netlink requests the kernel refused, by operation and errno.");
        _watchRestarts = _meter.CreateCounter<long>("flannel.lease_watch.restarts", "{restart}", "Times the lease watch failed and was restarted, or re-listed the store.");
        _leaseAcquisitions = _meter.CreateCounter<long>("flannel.lease.acquisitions", "{lease}", "Subnet leases acquired for this node (at start, and again when the store lost the lease).");
        _leaseRenewals = _meter.CreateCounter<long>("flannel.lease.renewals", "{lease}", "Renewals of this node's subnet lease.");
        _rejectedLeases = _meter.CreateCounter<long>("flannel.leases.rejected", "{lease}", "Remote leases refused by an admission rule (outside the network, overlapping, own public IP, backend rules), counted once per lease and rule.");
        _applyDuration = _meter.CreateHistogram<double>(
            "flannel.lease_events.apply_duration",
            "s",
            "Time the backend took to program one batch of lease events.",
            tags: null,
            advice: DurationAdvice);
        _meter.CreateObservableGauge("flannel.peers", ObservePeers, "{peer}", "Remote leases currently known to the agent.");
        _meter.CreateObservableGauge("flannel.lease.age", ObserveLeaseAge, "s", "Seconds since this node's lease was acquired or last renewed.");
        _meter.CreateObservableGauge("flannel.time_to_ready", ObserveTimeToReady, "s", "Seconds from the agent's start to its first subnet.env (readiness).");
    }

    /// <summary>
    /// Bucket boundaries for the duration histograms, in seconds: programming a batch takes from well under a
    /// millisecond (one peer) to seconds (thousands of peers at start-up), which the SDKs' default boundaries (0 to
    /// 10 000, meant for milliseconds) would put in one bucket. An embedder can still override them with a view.
    /// </summary>
    private static InstrumentAdvice<double> DurationAdvice { get; } = new()
    {
        HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    };

    /// <summary>Registers an agent's gauges; the returned handle updates them.</summary>
    public AgentGauges RegisterAgent(string agentName, TimeProvider timeProvider)
    {
        ArgumentException.ThrowIfNullOrEmpty(agentName);
        ArgumentNullException.ThrowIfNull(timeProvider);
        return _agents.GetOrAdd(agentName, name =>
        {
            // The lease counters exist from the start (at 0), so a scrape shows "no renewal yet", not nothing.
            var agentTag = new KeyValuePair<string, object?>("agent", name);
            _leaseAcquisitions.Add(0, agentTag);
            _leaseRenewals.Add(0, agentTag);
            return new AgentGauges(name, timeProvider);
        });
    }

    /// <summary>Counts a kernel write that succeeded.</summary>
    public void RecordProgrammed(string agentName, string operation) =>
        _programmedObjects.Add(1, new TagList { { "agent", agentName }, { "operation", operation } });

    /// <summary>Counts a kernel refusal by errno name (e.g. <c>EEXIST</c>).</summary>
    public void RecordNetlinkError(string agentName, string operation, string errno) =>
        _netlinkErrors.Add(1, new TagList { { "agent", agentName }, { "operation", operation }, { "errno", errno } });

    /// <summary>Counts a lease watch restart; <paramref name="reason"/> is <c>error</c> or <c>relist</c>.</summary>
    public void RecordWatchRestart(string agentName, string reason) =>
        _watchRestarts.Add(1, new TagList { { "agent", agentName }, { "reason", reason } });

    /// <summary>Counts a remote lease refused by the admission rule <paramref name="rule"/>.</summary>
    public void RecordLeaseRejected(string agentName, string rule) =>
        _rejectedLeases.Add(1, new TagList { { "agent", agentName }, { "rule", rule } });

    /// <summary>Records how long a backend took to program one batch of lease events.</summary>
    public void RecordApplyDuration(string agentName, TimeSpan duration) =>
        _applyDuration.Record(duration.TotalSeconds, new KeyValuePair<string, object?>("agent", agentName));

    /// <summary>Counts a subnet lease acquired for the node.</summary>
    public void RecordLeaseAcquired(string agentName) =>
        _leaseAcquisitions.Add(1, new KeyValuePair<string, object?>("agent", agentName));

    /// <summary>Counts a renewal of the node's subnet lease.</summary>
    public void RecordLeaseRenewed(string agentName) =>
        _leaseRenewals.Add(1, new KeyValuePair<string, object?>("agent", agentName));

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    private IEnumerable<Measurement<int>> ObservePeers() =>
        _agents.Values.Select(a => new Measurement<int>(a.Peers, new KeyValuePair<string, object?>("agent", a.AgentName)));

    private IEnumerable<Measurement<double>> ObserveLeaseAge() =>
        _agents.Values
            .Where(a => a.LeaseAge is not null)
            .Select(a => new Measurement<double>(a.LeaseAge!.Value.TotalSeconds, new KeyValuePair<string, object?>("agent", a.AgentName)));

    private IEnumerable<Measurement<double>> ObserveTimeToReady() =>
        _agents.Values
            .Where(a => a.TimeToReady is not null)
            .Select(a => new Measurement<double>(a.TimeToReady!.Value.TotalSeconds, new KeyValuePair<string, object?>("agent", a.AgentName)));

    /// <summary>One agent's gauge values.</summary>
    public sealed class AgentGauges
    {
        private readonly TimeProvider _timeProvider;
        private long _leaseRenewedAtTicks = -1;
        private int _peers;
        private long _timeToReadyTicks = -1;

        internal AgentGauges(string agentName, TimeProvider timeProvider)
        {
            AgentName = agentName;
            _timeProvider = timeProvider;
        }

        /// <summary>The agent's name.</summary>
        public string AgentName { get; }

        /// <summary>Remote leases currently known.</summary>
        public int Peers => Volatile.Read(ref _peers);

        /// <summary>Time since the own lease was acquired or renewed; null before the first lease.</summary>
        public TimeSpan? LeaseAge
        {
            get
            {
                long ticks = Interlocked.Read(ref _leaseRenewedAtTicks);
                return ticks < 0 ? null : _timeProvider.GetUtcNow() - new DateTimeOffset(ticks, TimeSpan.Zero);
            }
        }

        /// <summary>Time from the agent's start to readiness (subnet.env written); null until then.</summary>
        public TimeSpan? TimeToReady
        {
            get
            {
                long ticks = Interlocked.Read(ref _timeToReadyTicks);
                return ticks < 0 ? null : TimeSpan.FromTicks(ticks);
            }
        }

        /// <summary>Notes how long the agent took to become ready.</summary>
        public void Ready(TimeSpan timeToReady) => Interlocked.Exchange(ref _timeToReadyTicks, timeToReady.Ticks);

        /// <summary>Sets the number of remote leases.</summary>
        public void SetPeers(int peers) => Volatile.Write(ref _peers, peers);

        /// <summary>Notes that the own lease was acquired or renewed now.</summary>
        public void LeaseRenewed() => Interlocked.Exchange(ref _leaseRenewedAtTicks, _timeProvider.GetUtcNow().UtcTicks);
    }
}
