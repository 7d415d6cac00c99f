using Flannel.Agent;
using Flannel.Agent.Health;
using Flannel.Agent.Metrics;
using Flannel.Netlink;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Registers the flannel agent: one agent per service collection, with its netlink (namespace), subnet store,
/// backends, traffic rules and options. A process that runs several agents (one per network namespace, as
/// <c>samples/Flannel.Demo</c> does) gives each its own service collection and shares a <see cref="FlannelHealth"/>
/// between them; this library never builds a service provider itself.
/// </summary>
public static class FlannelAgentServiceCollectionExtensions
{
    /// <summary>
    /// Adds the agent as a hosted service, with options from <paramref name="configure"/>. The builder must also
    /// register a subnet store, at least one backend and netlink (<see cref="UseNetlink"/>).
    /// </summary>
    public static IFlannelBuilder AddAgent(this IFlannelBuilder builder, Action<FlannelAgentOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.AddOptionsWithValidateOnStart<FlannelAgentOptions>().Configure(configure);

        AddAgentCore(builder.Services);
        return builder;
    }

    /// <summary>Adds the agent as a hosted service, with options bound from <paramref name="configuration"/> (e.g. section <c>Flannel:Agent</c>).</summary>
    public static IFlannelBuilder AddAgent(this IFlannelBuilder builder, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configuration);
        builder.Services.AddOptionsWithValidateOnStart<FlannelAgentOptions>().Bind(configuration);
        AddAgentCore(builder.Services);
        return builder;
    }

    /// <summary>
    /// Registers the netlink instance the agent and the backends use (bound to the node's network namespace). It is
    /// wrapped in <see cref="MeteredNetlink"/> so kernel writes and errors are counted under the agent's name.
    /// </summary>
    public static IFlannelBuilder UseNetlink(this IFlannelBuilder builder, Func<IServiceProvider, INetlink> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        builder.Services.RemoveAll<INetlink>();
        builder.Services.AddSingleton<INetlink>(sp => new MeteredNetlink(
            factory(sp),
            sp.GetRequiredService<FlannelMetrics>(),
            sp.GetRequiredService<IOptions<FlannelAgentOptions>>().Value.Name));
        builder.Services.TryAddSingleton(sp => new FlannelMetrics(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
        return builder;
    }

    /// <summary>
    /// Registers the sysctls of the node's network namespace (backends set e.g. <c>accept_ra</c> on their devices):
    /// <see cref="ProcSysctl.Current"/> for the process's own namespace, <see cref="ProcSysctl.InNamespace"/> for
    /// another. Register the same namespace as <see cref="UseNetlink"/>.
    /// </summary>
    public static IFlannelBuilder UseSysctl(this IFlannelBuilder builder, Func<IServiceProvider, ISysctl> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        builder.Services.RemoveAll<ISysctl>();
        builder.Services.AddSingleton(factory);
        return builder;
    }

    /// <summary>Registers the masquerade/forward rule manager the agent drives.</summary>
    public static IFlannelBuilder UseTrafficRules(this IFlannelBuilder builder, Func<IServiceProvider, IAgentTrafficRules> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        builder.Services.RemoveAll<IAgentTrafficRules>();
        builder.Services.AddSingleton(factory);
        return builder;
    }

    /// <summary>
    /// Uses flannel's iptables (or, with <c>EnableNFTables</c>, nftables) masquerade and forward rules, run through
    /// <paramref name="runner"/>: null runs iptables/nft in this process's namespace; a
    /// <see cref="Flannel.Agent.Traffic.NetworkNamespaceCommandRunner"/> runs them in a named agent's node namespace.
    /// </summary>
    public static IFlannelBuilder UseTrafficManager(this IFlannelBuilder builder, Func<IServiceProvider, Flannel.Agent.Traffic.ICommandRunner>? runner = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.UseTrafficRules(sp => new TrafficManagerRules(
            runner?.Invoke(sp),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<Logging.ILogger<TrafficManagerRules>>()));
    }

    private static void AddAgentCore(IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<FlannelHealth>();
        services.TryAddSingleton(sp => new FlannelMetrics(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<FlannelAgentOptions>, FlannelAgentOptionsValidator>());
        services.TryAddSingleton<FlannelAgent>();
        services.TryAddSingleton<Flannel.Agent.Status.IFabricStatus>(sp => sp.GetRequiredService<FlannelAgent>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, FlannelAgentHostedService>());
    }

    /// <summary>Forwards the host's lifetime to the singleton agent (so the agent can also be resolved directly).</summary>
    private sealed class FlannelAgentHostedService(FlannelAgent agent) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => agent.StartAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => agent.StopAsync(cancellationToken);
    }
}
