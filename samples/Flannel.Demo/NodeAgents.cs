using Flannel.Agent;
using Flannel.Agent.Health;
using Flannel.Agent.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Flannel.Demo;

/// <summary>
/// Several agents in one process, each with a private service provider: the agent's netlink (its namespace), subnet
/// store, backends, rules and options are registered in its own service collection exactly as for a single agent.
/// The process's logging (with the node name appended to each category), <see cref="TimeProvider"/>,
/// <see cref="FlannelHealth"/> and <see cref="FlannelMetrics"/> are shared with it.
/// </summary>
internal static class NodeAgents
{
    /// <summary>Adds a hosted service that builds node <paramref name="name"/>'s provider at start and runs its agent.</summary>
    public static IServiceCollection AddNodeAgent(this IServiceCollection services, string name, Action<IFlannelBuilder> configure)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(configure);
        var nodeServices = new ServiceCollection();
        configure(nodeServices.AddFlannel());
        services.AddSingleton<IHostedService>(sp => new NodeAgentHost(name, nodeServices, sp));
        return services;
    }

    private sealed class NodeAgentHost(string name, IServiceCollection services, IServiceProvider host) : IHostedService, IAsyncDisposable
    {
        private ServiceProvider? _provider;
        private FlannelAgent? _agent;

        public Task StartAsync(CancellationToken cancellationToken)
        {
            services.TryAddSingleton(host.GetService<TimeProvider>() ?? TimeProvider.System);
            services.AddSingleton(host.GetRequiredService<FlannelHealth>());
            services.AddSingleton(host.GetRequiredService<FlannelMetrics>());
            ILoggerFactory loggerFactory = host.GetService<ILoggerFactory>() is { } shared
                ? new NodeLoggerFactory(shared, name)
                : NullLoggerFactory.Instance;
            services.AddSingleton(loggerFactory);
            services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
            services.PostConfigure<FlannelAgentOptions>(o => o.Name = name);
            _provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = false, ValidateScopes = true });
            _agent = _provider.GetRequiredService<FlannelAgent>();
            return _agent.StartAsync(cancellationToken);
        }

        public Task StopAsync(CancellationToken cancellationToken) => _agent?.StopAsync(cancellationToken) ?? Task.CompletedTask;

        public async ValueTask DisposeAsync()
        {
            if (_provider is not null)
            {
                await _provider.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Appends the node's name to every logger category, so the logs say which node spoke.</summary>
    private sealed class NodeLoggerFactory(ILoggerFactory inner, string nodeName) : ILoggerFactory
    {
        public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

        public ILogger CreateLogger(string categoryName) => inner.CreateLogger($"{categoryName}[{nodeName}]");

        public void Dispose()
        {
            // The host owns the inner factory.
        }
    }
}
