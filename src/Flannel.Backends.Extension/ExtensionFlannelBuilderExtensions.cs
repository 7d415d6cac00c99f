using Flannel.Backends.Extension;
using Flannel.Backends;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the extension backend.</summary>
public static class ExtensionFlannelBuilderExtensions
{
    /// <summary>
    /// Adds the <c>extension</c> backend: an <see cref="IBackend"/> keyed <c>"extension"</c> (and in the unkeyed
    /// <see cref="IBackend"/> list).
    /// </summary>
    /// <remarks>The options are validated when the host starts; each failure names the option and its value.</remarks>
    /// <param name="builder">The Flannel builder.</param>
    public static IFlannelBuilder AddExtensionBackend(this IFlannelBuilder builder)
    {
        AddExtensionBackendServices(builder);
        return builder;
    }

    /// <summary>Adds the <c>extension</c> backend (see <see cref="AddExtensionBackend(IFlannelBuilder)"/>) with options set in code.</summary>
    /// <param name="builder">The Flannel builder.</param>
    /// <param name="configure">Adjusts the host-side options (shell, timeout, namespace).</param>
    public static IFlannelBuilder AddExtensionBackend(this IFlannelBuilder builder, Action<ExtensionBackendOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        AddExtensionBackendServices(builder).Configure(configure);
        return builder;
    }

    /// <summary>
    /// Adds the <c>extension</c> backend (see <see cref="AddExtensionBackend(IFlannelBuilder)"/>) with options bound from a
    /// configuration section, e.g. <c>{ Shell: "/bin/bash", CommandTimeout: "00:00:30" }</c>.
    /// </summary>
    /// <param name="builder">The Flannel builder.</param>
    /// <param name="configuration">The section holding <see cref="ExtensionBackendOptions"/>.</param>
    public static IFlannelBuilder AddExtensionBackend(this IFlannelBuilder builder, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        AddExtensionBackendServices(builder).Bind(configuration);
        return builder;
    }

    private static OptionsBuilder<ExtensionBackendOptions> AddExtensionBackendServices(IFlannelBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        IServiceCollection services = builder.Services;
        builder.AddBackend<ExtensionBackend>(ExtensionBackend.TypeName);

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ExtensionBackendOptions>, ExtensionBackendOptionsValidator>());
        return services.AddOptions<ExtensionBackendOptions>().ValidateOnStart();
    }
}
