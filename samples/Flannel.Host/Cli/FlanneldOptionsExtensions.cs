using Flannel.Agent.Traffic;

namespace Flannel.Host.Cli;

/// <summary>Maps flanneld's flags onto the library options they configure.</summary>
public static class FlanneldOptionsExtensions
{
    /// <summary>
    /// The traffic manager settings from <c>--ip-masq-fully-random-disable</c> (the agent runs the resync every
    /// <c>--iptables-resync</c>).
    /// </summary>
    public static TrafficManagerOptions ToTrafficManagerOptions(this FlanneldOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new TrafficManagerOptions
        {
            DisableFullyRandom = options.IPMasqFullyRandomDisable,
        };
    }
}
