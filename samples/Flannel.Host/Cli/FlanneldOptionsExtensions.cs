using Flannel.Agent.Traffic;

namespace Flannel.Host.Cli;

/// <summary>Maps flanneld's flags onto the library options they configure.</summary>
public static class FlanneldOptionsExtensions
{
    /// <summary>
    /// The traffic manager settings from <c>--iptables-resync</c> and <c>--ip-masq-fully-random-disable</c>
    /// (the resync period also drives the nftables resync and the blackhole route check, as in flanneld).
    /// </summary>
    public static TrafficManagerOptions ToTrafficManagerOptions(this FlanneldOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new TrafficManagerOptions
        {
            ResyncPeriod = options.IptablesResyncPeriod,
            DisableFullyRandom = options.IPMasqFullyRandomDisable,
        };
    }
}
