using Flannel.Backends.WireGuard;
using Flannel.Backends;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the wireguard backend.</summary>
public static class WireGuardFlannelBuilderExtensions
{
    /// <summary>
    /// Adds the <c>wireguard</c> backend: an <see cref="IBackend"/> keyed <c>"wireguard"</c> (and in the unkeyed
    /// <see cref="IBackend"/> list). The <c>INetlink</c> it uses is resolved from the container; the host registers it.
    /// </summary>
    /// <remarks>The options are validated when the host starts; each failure names the option and its value.</remarks>
    /// <param name="builder">The Flannel builder.</param>
    public static IFlannelBuilder AddWireGuardBackend(this IFlannelBuilder builder)
    {
        AddWireGuardBackendServices(builder);
        return builder;
    }

    /// <summary>Adds the <c>wireguard</c> backend (see <see cref="AddWireGuardBackend(IFlannelBuilder)"/>) with options set in code.</summary>
    /// <param name="builder">The Flannel builder.</param>
    /// <param name="configure">Adjusts the host-side options (control path, key file, namespaces, wireguard-go).</param>
    public static IFlannelBuilder AddWireGuardBackend(this IFlannelBuilder builder, Action<WireGuardBackendOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        AddWireGuardBackendServices(builder).Configure(configure);
        return builder;
    }

    /// <summary>
    /// Adds the <c>wireguard</c> backend (see <see cref="AddWireGuardBackend(IFlannelBuilder)"/>) with options bound from a
    /// configuration section, e.g. <c>{ ControlPath: "Userspace", KeyFile: "/run/flannel/wg.key" }</c>.
    /// </summary>
    /// <param name="builder">The Flannel builder.</param>
    /// <param name="configuration">The section holding <see cref="WireGuardBackendOptions"/>.</param>
    public static IFlannelBuilder AddWireGuardBackend(this IFlannelBuilder builder, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        AddWireGuardBackendServices(builder).Bind(configuration);
        return builder;
    }

    private static OptionsBuilder<WireGuardBackendOptions> AddWireGuardBackendServices(IFlannelBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        IServiceCollection services = builder.Services;
        builder.AddBackend<WireGuardBackend>(WireGuardBackend.TypeName);

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<WireGuardBackendOptions>, WireGuardBackendOptionsValidator>());
        return services.AddOptions<WireGuardBackendOptions>().ValidateOnStart();
    }
}
