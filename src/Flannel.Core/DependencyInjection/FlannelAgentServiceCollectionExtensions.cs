using Flannel.Agent;
using Flannel.Health;
using Flannel.Metrics;
using Flannel.Netlink;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Registers the flannel agent: one agent per service collection with <see cref="AddAgent(IFlannelBuilder, Action{FlannelAgentOptions}?)"/>,
/// or several agents in one process, each with its own services (netlink namespace, subnet store, backend), with
/// <see cref="AddFlannelAgent"/>.
/// </summary>
public static class FlannelAgentServiceCollectionExtensions
{
    /// <summary>
    /// Adds the agent as a hosted service, with options from <paramref name="configure"/>. The builder must also
    /// register a subnet store, at least one backend and netlink (<see cref="UseNetlink"/>).
    /// </summary>
    public static IFlannelBuilder AddAgent(this IFlannelBuilder builder, Action<FlannelAgentOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        OptionsBuilder<FlannelAgentOptions> options = builder.Services.AddOptionsWithValidateOnStart<FlannelAgentOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

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
    /// <see cref="Flannel.Traffic.NetworkNamespaceCommandRunner"/> runs them in a named agent's node namespace.
    /// </summary>
    public static IFlannelBuilder UseTrafficManager(this IFlannelBuilder builder, Func<IServiceProvider, Flannel.Traffic.ICommandRunner>? runner = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.UseTrafficRules(sp => new TrafficManagerRules(
            runner?.Invoke(sp),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<Logging.ILogger<TrafficManagerRules>>()));
    }

    /// <summary>
    /// Adds flanneld's <c>/healthz</c> and <c>/readyz</c> endpoint (a tiny built-in HTTP responder), listening when
    /// <see cref="HealthServerOptions.Port"/> is not 0. It reports the readiness of every agent in the process.
    /// </summary>
    public static IServiceCollection AddFlannelHealthEndpoint(this IServiceCollection services, Action<HealthServerOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.Configure(configure);
        services.TryAddSingleton<FlannelHealth>();
        services.TryAddSingleton<HealthServer>();
        services.AddHostedService(sp => sp.GetRequiredService<HealthServer>());
        return services;
    }

    /// <summary>
    /// Adds a named agent with its own services: <paramref name="configure"/> receives a builder over a private
    /// service collection where the agent's netlink (its namespace), subnet store, backends and options
    /// (<see cref="AddAgent(IFlannelBuilder, Action{FlannelAgentOptions}?)"/>) are registered exactly as for a single
    /// agent. The process's logging, <see cref="TimeProvider"/>, health and metrics are shared with it; other shared
    /// objects (such as an in-memory subnet registry) are registered in it as instances, or with
    /// <see cref="IFlannelAgentBuilder.ShareFromHost{TService}"/>.
    /// </summary>
    public static IServiceCollection AddFlannelAgent(this IServiceCollection services, string name, Action<IFlannelAgentBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(configure);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<FlannelHealth>();
        services.TryAddSingleton(sp => new FlannelMetrics(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));

        var agentBuilder = new NamedAgentBuilder(name);
        configure(agentBuilder);
        services.AddSingleton<IHostedService>(sp => new NamedFlannelAgentHost(name, agentBuilder, sp));
        return services;
    }

    private static void AddAgentCore(IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<FlannelHealth>();
        services.TryAddSingleton(sp => new FlannelMetrics(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<FlannelAgentOptions>, FlannelAgentOptionsValidator>());
        services.TryAddSingleton<FlannelAgent>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, FlannelAgentHostedService>());
    }

    /// <summary>Forwards the host's lifetime to the singleton agent (so the agent can also be resolved directly).</summary>
    private sealed class FlannelAgentHostedService(FlannelAgent agent) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => agent.StartAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => agent.StopAsync(cancellationToken);
    }

    private sealed class NamedAgentBuilder(string name) : IFlannelAgentBuilder
    {
        private IServiceProvider? _host;

        public string Name { get; } = name;

        public IServiceCollection Services { get; } = new ServiceCollection();

        public IFlannelAgentBuilder ShareFromHost<TService>()
            where TService : class
        {
            Services.AddSingleton(_ => (_host ?? throw new InvalidOperationException("the host's services are not available yet")).GetRequiredService<TService>());
            return this;
        }

        internal void AttachHost(IServiceProvider host) => _host = host;
    }

    /// <summary>Builds a named agent's private service provider when the host starts, runs the agent, and disposes both at stop.</summary>
    private sealed class NamedFlannelAgentHost(string name, NamedAgentBuilder builder, IServiceProvider host) : IHostedService, IAsyncDisposable
    {
        private ServiceProvider? _provider;
        private FlannelAgent? _agent;

        public FlannelAgent Agent => _agent ?? throw new InvalidOperationException($"agent {name} has not started");

        public Task StartAsync(CancellationToken cancellationToken)
        {
            builder.AttachHost(host);
            IServiceCollection services = builder.Services;
            services.TryAddSingleton(host.GetRequiredService<TimeProvider>());
            services.AddSingleton(host.GetRequiredService<FlannelHealth>());
            services.AddSingleton(host.GetRequiredService<FlannelMetrics>());
            if (host.GetService<Logging.ILoggerFactory>() is Logging.ILoggerFactory loggerFactory)
            {
                services.TryAddSingleton<Logging.ILoggerFactory>(new AgentLoggerFactory(loggerFactory, name));
                services.TryAddSingleton(typeof(Logging.ILogger<>), typeof(Logging.Logger<>));
            }
            else
            {
                services.TryAddSingleton<Logging.ILoggerFactory>(Logging.Abstractions.NullLoggerFactory.Instance);
                services.TryAddSingleton(typeof(Logging.ILogger<>), typeof(Logging.Abstractions.NullLogger<>));
            }

            if (!services.Any(d => d.ServiceType == typeof(IConfigureOptions<FlannelAgentOptions>)))
            {
                services.AddOptions<FlannelAgentOptions>();
            }

            services.PostConfigure<FlannelAgentOptions>(o => o.Name = name);
            AddAgentCore(services);
            _provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = false, ValidateScopes = true });
            _agent = _provider.GetRequiredService<FlannelAgent>();
            return _agent.StartAsync(cancellationToken);
        }

        public async Task StopAsync(CancellationToken cancellationToken)
        {
            if (_agent is not null)
            {
                await _agent.StopAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (_provider is not null)
            {
                await _provider.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Appends the agent's name to every logger category, so a multi-agent process's logs say which node spoke.</summary>
    private sealed class AgentLoggerFactory(Logging.ILoggerFactory inner, string agentName) : Logging.ILoggerFactory
    {
        public void AddProvider(Logging.ILoggerProvider provider) => inner.AddProvider(provider);

        public Logging.ILogger CreateLogger(string categoryName) => inner.CreateLogger($"{categoryName}[{agentName}]");

        public void Dispose()
        {
            // The host owns the inner factory.
        }
    }
}

/// <summary>The builder of a named agent's private services (see <see cref="FlannelAgentServiceCollectionExtensions.AddFlannelAgent"/>).</summary>
public interface IFlannelAgentBuilder : IFlannelBuilder
{
    /// <summary>The agent's name.</summary>
    string Name { get; }

    /// <summary>Makes the host's registration of <typeparamref name="TService"/> visible to this agent's services.</summary>
    IFlannelAgentBuilder ShareFromHost<TService>()
        where TService : class;
}
