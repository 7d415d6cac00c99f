namespace Flannel.Backends.HostGw;

/// <summary>Host-side options of the host-gw backend.</summary>
public sealed class HostGwBackendOptions
{
    /// <summary>How often the routes are compared with the desired state and repaired. Default 10 s (flannel's route check).</summary>
    [PositiveDuration]
    public TimeSpan ResyncInterval { get; set; } = TimeSpan.FromSeconds(10);
}
