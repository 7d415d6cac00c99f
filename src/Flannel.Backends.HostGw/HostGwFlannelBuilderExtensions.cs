using Flannel.Backends.HostGw;
using Flannel.Backends;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the host-gw backend.</summary>
public static class HostGwFlannelBuilderExtensions
{
    /// <summary>
    /// Adds the <c>host-gw</c> backend: an <see cref="IBackend"/> keyed <c>"host-gw"</c> (and in the unkeyed
    /// <see cref="IBackend"/> list). The <c>INetlink</c> it uses is resolved from the container; the host
    /// registers it.
    /// </summary>
    /// <remarks>The options are validated when the host starts; each failure names the option and its value.</remarks>
    /// <param name="builder">The Flannel builder.</param>
    public static IFlannelBuilder AddHostGwBackend(this IFlannelBuilder builder)
    {
        AddHostGwBackendServices(builder);
        return builder;
    }

    /// <summary>Adds the <c>host-gw</c> backend (see <see cref="AddHostGwBackend(IFlannelBuilder)"/>) with options set in code.</summary>
    /// <param name="builder">The Flannel builder.</param>
    /// <param name="configure">Adjusts the host-side options (resync interval).</param>
    public static IFlannelBuilder AddHostGwBackend(this IFlannelBuilder builder, Action<HostGwBackendOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        AddHostGwBackendServices(builder).Configure(configure);
        return builder;
    }

    /// <summary>
    /// Adds the <c>host-gw</c> backend (see <see cref="AddHostGwBackend(IFlannelBuilder)"/>) with options bound from a
    /// configuration section, e.g. <c>{ ResyncInterval: "00:00:30" }</c>.
    /// </summary>
    /// <param name="builder">The Flannel builder.</param>
    /// <param name="configuration">The section holding <see cref="HostGwBackendOptions"/>.</param>
    public static IFlannelBuilder AddHostGwBackend(this IFlannelBuilder builder, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        AddHostGwBackendServices(builder).Bind(configuration);
        return builder;
    }

    private static OptionsBuilder<HostGwBackendOptions> AddHostGwBackendServices(IFlannelBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        IServiceCollection services = builder.Services;
        builder.AddBackend<HostGwBackend>(HostGwBackend.TypeName);

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<HostGwBackendOptions>, HostGwBackendOptionsValidator>());
        return services.AddOptions<HostGwBackendOptions>().ValidateOnStart();
    }
}
