namespace Flannel.Agent.Probing;

/// <summary>
/// How the agent probes its peers (<c>--probe-*</c> flags in flanneld). Every peer is probed once per
/// <see cref="Interval"/> over the overlay and over the underlay, the peers spread evenly over the interval.
/// </summary>
public sealed class FabricProbeOptions
{
    /// <summary>Probe the peers at all. Default true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Each peer is probed once per interval; N peers cost N / interval probes per second. Default 60 s.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long to wait for a reply. Default 1 s.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Consecutive failures before a path is declared unreachable. Default 3.</summary>
    public int FailureThreshold { get; set; } = 3;

    /// <summary>Consecutive replies before an unreachable path is declared reachable again. Default 2.</summary>
    public int RecoveryThreshold { get; set; } = 2;

    /// <summary>
    /// After a result that contradicts a path's state, the peer is probed again this soon instead of waiting for its
    /// next turn, so a failure is confirmed (or dismissed) in seconds. Default 1 s.
    /// </summary>
    public TimeSpan ConfirmDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The results RTT and loss are computed over, per path. Default the last 20.</summary>
    public int Window { get; set; } = 20;

    /// <summary>A path that changed state <see cref="FlapThreshold"/> times within this window is flapping. Default 10 min.</summary>
    public TimeSpan FlapWindow { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>State changes within <see cref="FlapWindow"/> that make a path flapping. Default 4.</summary>
    public int FlapThreshold { get; set; } = 4;

    /// <summary>
    /// A flapping path is declared reachable again only after answering for this long without a failure; its state
    /// changes are logged once, not each time. Default 2 min.
    /// </summary>
    public TimeSpan HoldDown { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// The most peers probed per second, whatever the peer count (each peer costs one overlay and one underlay
    /// request). Beyond it the round takes longer than <see cref="Interval"/>. Default 500.
    /// </summary>
    public double MaxPeersPerSecond { get; set; } = 500;

    /// <summary>
    /// Add a <c>peer</c> tag (the lease's subnet key) to <c>flannel.peer.reachable</c>: one series per peer and path.
    /// Off by default, since it multiplies the series by the cluster size.
    /// </summary>
    public bool PerPeerMetrics { get; set; }
}
