using System.Diagnostics.Metrics;

namespace Flannel.Reconciliation;

/// <summary>
/// The instruments every backend reports on the <c>Flannel.Backends</c> meter. Each measurement carries a
/// <c>flannel.backend</c> tag (<c>vxlan</c>, <c>host-gw</c>).
/// </summary>
public sealed class BackendMetrics : IDisposable
{
    /// <summary>The meter name to subscribe to (OpenTelemetry <c>AddMeter("Flannel.Backends")</c>).</summary>
    public const string MeterName = "Flannel.Backends";

    /// <summary>Kernel objects a reconciliation added, fixed or deleted (drift repairs). Tags: kind, action.</summary>
    public const string RepairsName = "flannel.backend.repairs";

    /// <summary>Reconciliation passes. Tags: reason, result.</summary>
    public const string ReconciliationsName = "flannel.backend.reconciliations";

    /// <summary>Netlink operations the kernel refused. Tag: kind.</summary>
    public const string OperationFailuresName = "flannel.backend.netlink.failures";

    /// <summary>Peers withdrawn because one of their objects could not be programmed.</summary>
    public const string PeerFailuresName = "flannel.backend.peer.failures";

    /// <summary>Times the backend's device was found missing and recreated.</summary>
    public const string DeviceRecreationsName = "flannel.backend.device.recreations";

    /// <summary>Remote peers in the desired state.</summary>
    public const string PeersName = "flannel.backend.peers";

    /// <summary>Remote peers refused (by the kernel, or with an unusable lease) and waiting for their retry.</summary>
    public const string RefusedPeersName = "flannel.backend.peers.refused";

    /// <summary>Seconds from receiving lease events to the kernel acknowledging their objects.</summary>
    public const string EventDurationName = "flannel.backend.event.duration";

    private readonly Meter? _ownedMeter;
    private readonly KeyValuePair<string, object?> _backendTag;
    private readonly Counter<long> _repairs;
    private readonly Counter<long> _reconciliations;
    private readonly Counter<long> _operationFailures;
    private readonly Counter<long> _peerFailures;
    private readonly Counter<long> _deviceRecreations;
    private readonly UpDownCounter<long> _peers;
    private readonly UpDownCounter<long> _refusedPeers;
    private readonly Histogram<double> _eventDuration;

    /// <summary>Creates the instruments for <paramref name="backendType"/> on a meter from <paramref name="meterFactory"/>, or on a private meter when it is null.</summary>
    public BackendMetrics(string backendType, IMeterFactory? meterFactory)
    {
        ArgumentException.ThrowIfNullOrEmpty(backendType);
        Meter meter;
        if (meterFactory is not null)
        {
            meter = meterFactory.Create(new MeterOptions(MeterName));
        }
        else
        {
            _ownedMeter = new Meter(MeterName);
            meter = _ownedMeter;
        }

        Meter = meter;
        _backendTag = new KeyValuePair<string, object?>("flannel.backend", backendType);
        _repairs = meter.CreateCounter<long>(RepairsName, "{object}", "Kernel objects a reconciliation added, fixed or deleted because the kernel had drifted from the desired state.");
        _reconciliations = meter.CreateCounter<long>(ReconciliationsName, "{pass}", "Full reconciliation passes (dump, diff, repair).");
        _operationFailures = meter.CreateCounter<long>(OperationFailuresName, "{operation}", "Operations the kernel (or a backend's applier) refused.");
        _peerFailures = meter.CreateCounter<long>(PeerFailuresName, "{peer}", "Peers withdrawn because one of their kernel objects could not be programmed.");
        _deviceRecreations = meter.CreateCounter<long>(DeviceRecreationsName, "{device}", "Times the backend's device was found missing and recreated.");
        _peers = meter.CreateUpDownCounter<long>(PeersName, "{peer}", "Remote peers in the backend's desired state.");
        _refusedPeers = meter.CreateUpDownCounter<long>(RefusedPeersName, "{peer}", "Remote peers refused (by the kernel, or with an unusable lease) and retried with backoff.");
        // Seconds, from one peer (well under a millisecond) to thousands at start-up; the SDKs' default boundaries
        // (0 to 10 000, meant for milliseconds) would put every observation in the first buckets.
        _eventDuration = meter.CreateHistogram<double>(
            EventDurationName,
            "s",
            "Time from receiving lease events to the kernel acknowledging their objects.",
            tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
    }

    /// <summary>The meter (tests subscribe to it).</summary>
    public Meter Meter { get; }

    /// <summary>Counts one object a reconciliation added, fixed or deleted.</summary>
    public void Repaired(StateObjectKind kind, RepairAction action) =>
        _repairs.Add(1, _backendTag, new("kind", kind?.Name), new("action", ActionName(action)));

    /// <summary>Counts one full reconciliation pass and its result.</summary>
    public void Reconciled(string reason, bool succeeded) =>
        _reconciliations.Add(1, _backendTag, new("reason", reason), new("result", succeeded ? "ok" : "failed"));

    /// <summary>Counts one operation the kernel (or a backend's applier) refused.</summary>
    public void OperationFailed(StateObjectKind kind) => _operationFailures.Add(1, _backendTag, new("kind", kind?.Name));

    /// <summary>Counts one peer withdrawn because an object of it could not be programmed.</summary>
    public void PeerFailed() => _peerFailures.Add(1, _backendTag);

    /// <summary>Counts one recreation of the backend's device.</summary>
    public void DeviceRecreated() => _deviceRecreations.Add(1, _backendTag);

    /// <summary>Adjusts the peer gauge by <paramref name="delta"/>.</summary>
    public void PeersChanged(long delta)
    {
        if (delta != 0)
        {
            _peers.Add(delta, _backendTag);
        }
    }

    /// <summary>Adjusts the refused-peer gauge by <paramref name="delta"/>.</summary>
    public void RefusedPeersChanged(long delta) => _refusedPeers.Add(delta, _backendTag);

    /// <summary>Records the time from receiving lease events to the kernel acknowledging their objects.</summary>
    public void EventsProgrammed(TimeSpan elapsed) => _eventDuration.Record(elapsed.TotalSeconds, _backendTag);

    /// <summary>Disposes the private meter, if one was created.</summary>
    public void Dispose() => _ownedMeter?.Dispose();

    private static string ActionName(RepairAction action) => action switch
    {
        RepairAction.Added => "added",
        RepairAction.Fixed => "fixed",
        _ => "deleted",
    };
}
