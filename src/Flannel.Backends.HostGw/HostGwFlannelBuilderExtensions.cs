using Flannel.Backends;
using Flannel.Backends.HostGw;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the host-gw backend.</summary>
public static class HostGwFlannelBuilderExtensions
{
    /// <summary>
    /// Adds the <c>host-gw</c> backend: an <see cref="IBackend"/> keyed <c>"host-gw"</c> (and in the unkeyed
    /// <see cref="IBackend"/> list). The <c>INetlink</c> it uses is resolved from the container; the host
    /// registers it.
    /// </summary>
    /// <param name="builder">The Flannel builder.</param>
    /// <param name="configure">Adjusts the host-side options (resync interval).</param>
    public static IFlannelBuilder AddHostGwBackend(this IFlannelBuilder builder, Action<HostGwBackendOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        IServiceCollection services = builder.Services;
        var options = services.AddOptions<HostGwBackendOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        if (!services.Any(d => d.ServiceType == typeof(HostGwBackend)))
        {
            services.AddSingleton<HostGwBackend>();
            services.AddKeyedSingleton<IBackend>(HostGwBackend.TypeName, static (sp, _) => sp.GetRequiredService<HostGwBackend>());
            services.AddSingleton<IBackend>(static sp => sp.GetRequiredService<HostGwBackend>());
        }

        services.TryAddSingleton(TimeProvider.System);
        return builder;
    }
}
