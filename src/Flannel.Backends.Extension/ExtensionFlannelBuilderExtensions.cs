using Flannel.Backends;
using Flannel.Backends.Extension;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the extension backend.</summary>
public static class ExtensionFlannelBuilderExtensions
{
    /// <summary>
    /// Adds the <c>extension</c> backend: an <see cref="IBackend"/> keyed <c>"extension"</c> (and in the unkeyed
    /// <see cref="IBackend"/> list).
    /// </summary>
    /// <param name="builder">The Flannel builder.</param>
    /// <param name="configure">Adjusts the host-side options (shell, timeout, namespace).</param>
    public static IFlannelBuilder AddExtensionBackend(this IFlannelBuilder builder, Action<ExtensionBackendOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        IServiceCollection services = builder.Services;
        var options = services.AddOptions<ExtensionBackendOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        if (!services.Any(d => d.ServiceType == typeof(ExtensionBackend)))
        {
            services.AddSingleton<ExtensionBackend>();
            services.AddKeyedSingleton<IBackend>(ExtensionBackend.TypeName, static (sp, _) => sp.GetRequiredService<ExtensionBackend>());
            services.AddSingleton<IBackend>(static sp => sp.GetRequiredService<ExtensionBackend>());
        }

        return builder;
    }
}
