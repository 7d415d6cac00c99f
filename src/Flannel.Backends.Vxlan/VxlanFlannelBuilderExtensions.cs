using Flannel.Backends;
using Flannel.Backends.Vxlan;
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
    /// <param name="builder">The Flannel builder.</param>
    /// <param name="configure">Adjusts the host-side options (resync interval, route mode).</param>
    public static IFlannelBuilder AddVxlanBackend(this IFlannelBuilder builder, Action<VxlanBackendOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        IServiceCollection services = builder.Services;
        OptionsBuilder<VxlanBackendOptions> options = services.AddOptions<VxlanBackendOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        if (!services.Any(d => d.ServiceType == typeof(VxlanBackend)))
        {
            services.AddSingleton<VxlanBackend>();
            services.AddKeyedSingleton<IBackend>(VxlanBackend.TypeName, static (sp, _) => sp.GetRequiredService<VxlanBackend>());
            services.AddSingleton<IBackend>(static sp => sp.GetRequiredService<VxlanBackend>());
        }

        services.TryAddSingleton(TimeProvider.System);
        return builder;
    }
}
