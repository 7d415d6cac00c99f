using Flannel.Subnets;
using Flannel.Subnets.InMemory;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the embedded in-memory subnet store.</summary>
public static class InMemorySubnetStoreBuilderExtensions
{
    /// <summary>
    /// Uses the in-memory store. A registry (the shared "cluster") is created from
    /// <see cref="InMemorySubnetStoreOptions.NetworkConfig"/> unless one is already registered.
    /// </summary>
    /// <exception cref="InvalidOperationException">At resolution: no registry is registered and no NetworkConfig is set.</exception>
    public static IFlannelBuilder AddInMemorySubnetStore(this IFlannelBuilder builder, Action<InMemorySubnetStoreOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new InMemorySubnetStoreOptions();
        configure(options);
        builder.Services.TryAddSingleton(services => new InMemorySubnetRegistry(
            options.NetworkConfig ?? throw new InvalidOperationException(
                "AddInMemorySubnetStore needs InMemorySubnetStoreOptions.NetworkConfig (net-conf.json text) or a registered InMemorySubnetRegistry."),
            services.GetService<TimeProvider>() ?? TimeProvider.System));
        return AddStore(builder, options);
    }

    /// <summary>
    /// Uses the in-memory store bound to <paramref name="registry"/>, which other agents in the same process may
    /// share: this is how several nodes form one cluster in a single process. The caller owns the registry.
    /// </summary>
    public static IFlannelBuilder AddInMemorySubnetStore(
        this IFlannelBuilder builder, InMemorySubnetRegistry registry, Action<InMemorySubnetStoreOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(registry);
        var options = new InMemorySubnetStoreOptions();
        configure?.Invoke(options);

        // Registered as an instance, so the container does not dispose it: it outlives any one agent.
        builder.Services.RemoveAll<InMemorySubnetRegistry>();
        builder.Services.AddSingleton(registry);
        return AddStore(builder, options);
    }

    private static IFlannelBuilder AddStore(IFlannelBuilder builder, InMemorySubnetStoreOptions options)
    {
        builder.Services.RemoveAll<ISubnetStore>();
        builder.Services.AddSingleton<ISubnetStore>(services => new InMemorySubnetStore(
            services.GetRequiredService<InMemorySubnetRegistry>(),
            options,
            services.GetService<ILogger<InMemorySubnetStore>>()));
        return builder;
    }
}
