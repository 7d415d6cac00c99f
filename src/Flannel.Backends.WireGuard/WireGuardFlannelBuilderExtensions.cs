using Flannel.Backends;
using Flannel.Backends.WireGuard;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the wireguard backend.</summary>
public static class WireGuardFlannelBuilderExtensions
{
    /// <summary>
    /// Adds the <c>wireguard</c> backend: an <see cref="IBackend"/> keyed <c>"wireguard"</c> (and in the unkeyed
    /// <see cref="IBackend"/> list). The <c>INetlink</c> it uses is resolved from the container; the host registers it.
    /// </summary>
    /// <param name="builder">The Flannel builder.</param>
    /// <param name="configure">Adjusts the host-side options (control path, key file, namespaces, wireguard-go).</param>
    public static IFlannelBuilder AddWireGuardBackend(this IFlannelBuilder builder, Action<WireGuardBackendOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        IServiceCollection services = builder.Services;
        var options = services.AddOptions<WireGuardBackendOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        if (!services.Any(d => d.ServiceType == typeof(WireGuardBackend)))
        {
            services.AddSingleton<WireGuardBackend>();
            services.AddKeyedSingleton<IBackend>(WireGuardBackend.TypeName, static (sp, _) => sp.GetRequiredService<WireGuardBackend>());
            services.AddSingleton<IBackend>(static sp => sp.GetRequiredService<WireGuardBackend>());
        }

        services.TryAddSingleton(TimeProvider.System);
        return builder;
    }
}
