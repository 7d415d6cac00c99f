using Flannel.Backends.Vxlan;
using Flannel.Backends;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the VXLAN backend.</summary>
public static class VxlanFlannelBuilderExtensions
{
    /// <summary>
    /// Adds the <c>vxlan</c> backend: an <see cref="IBackend"/> keyed <c>"vxlan"</c> (and in the unkeyed
    /// <see cref="IBackend"/> list). The <c>INetlink</c> it uses is resolved from the container; the host
    /// registers it.
    /// </summary>
    /// <remarks>The options are validated when the host starts; each failure names the option and its value.</remarks>
    /// <param name="builder">The Flannel builder.</param>
    public static IFlannelBuilder AddVxlanBackend(this IFlannelBuilder builder)
    {
        AddVxlanBackendServices(builder);
        return builder;
    }

    /// <summary>Adds the <c>vxlan</c> backend (see <see cref="AddVxlanBackend(IFlannelBuilder)"/>) with options set in code.</summary>
    /// <param name="builder">The Flannel builder.</param>
    /// <param name="configure">Adjusts the host-side options (resync interval, route mode).</param>
    public static IFlannelBuilder AddVxlanBackend(this IFlannelBuilder builder, Action<VxlanBackendOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        AddVxlanBackendServices(builder).Configure(configure);
        return builder;
    }

    /// <summary>
    /// Adds the <c>vxlan</c> backend (see <see cref="AddVxlanBackend(IFlannelBuilder)"/>) with options bound from a
    /// configuration section, e.g. <c>{ ResyncInterval: "00:00:30", RouteMode: "NexthopObjects" }</c>.
    /// </summary>
    /// <param name="builder">The Flannel builder.</param>
    /// <param name="configuration">The section holding <see cref="VxlanBackendOptions"/>.</param>
    public static IFlannelBuilder AddVxlanBackend(this IFlannelBuilder builder, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        AddVxlanBackendServices(builder).Bind(configuration);
        return builder;
    }

    private static OptionsBuilder<VxlanBackendOptions> AddVxlanBackendServices(IFlannelBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        IServiceCollection services = builder.Services;
        builder.AddBackend<VxlanBackend>(VxlanBackend.TypeName);

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<VxlanBackendOptions>, VxlanBackendOptionsValidator>());
        return services.AddOptions<VxlanBackendOptions>().ValidateOnStart();
    }
}
