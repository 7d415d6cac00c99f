using Flannel.Agent.Probing;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the agent's peer probes (<see cref="Flannel.Agent.FlannelAgentOptions.Probes"/> configures them).</summary>
public static class FabricProbesBuilderExtensions
{
    /// <summary>
    /// Probes every peer with ICMP echo over the overlay and the underlay, from one raw ICMP socket per address
    /// family opened in <paramref name="networkNamespace"/> (the node's; null: this process's). Needs CAP_NET_RAW;
    /// without it the probes report a send failure and the agent runs on.
    /// </summary>
    public static IFlannelBuilder UseFabricProbes(this IFlannelBuilder builder, string? networkNamespace = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.UseEchoProber(sp => new IcmpEchoProber(networkNamespace, sp.GetService<TimeProvider>()));
    }

    /// <summary>Probes peers through <paramref name="factory"/>'s prober (a fake in tests, another transport).</summary>
    public static IFlannelBuilder UseEchoProber(this IFlannelBuilder builder, Func<IServiceProvider, IEchoProber> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        builder.Services.RemoveAll<IEchoProber>();
        builder.Services.AddSingleton(factory);
        builder.Services.TryAddSingleton(sp => new FabricMetrics(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
        return builder;
    }
}
