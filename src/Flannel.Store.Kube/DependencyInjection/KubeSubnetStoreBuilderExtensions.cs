using Flannel.Store.Kube;
using Flannel.Subnets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the Kubernetes subnet store (flanneld <c>--kube-subnet-mgr</c>) to a Flannel.NET agent.</summary>
public static class KubeSubnetStoreBuilderExtensions
{
    /// <summary>
    /// Uses the Kubernetes API as the subnet store: registers <see cref="KubeSubnetStore"/> as
    /// <see cref="ISubnetStore"/> (and as itself, so the agent can read <see cref="KubeSubnetStore.State"/> for
    /// readiness), with <see cref="KubeSubnetStoreOptions"/> validated when the host starts.
    /// </summary>
    /// <param name="builder">The builder from <c>AddFlannel()</c>.</param>
    /// <param name="configure">Sets the options (API URL, kubeconfig, annotation prefix, net-conf.json path, ...).</param>
    public static IFlannelBuilder AddKubeSubnetStore(this IFlannelBuilder builder, Action<KubeSubnetStoreOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        AddKubeSubnetStoreServices(builder).Configure(configure);
        return builder;
    }

    /// <summary>
    /// Uses the Kubernetes API as the subnet store (see
    /// <see cref="AddKubeSubnetStore(IFlannelBuilder, Action{KubeSubnetStoreOptions})"/>) with options bound from a
    /// configuration section, e.g. <c>{ NodeName: "node-1", NetConfigPath: "/etc/kube-flannel/net-conf.json" }</c>.
    /// </summary>
    /// <param name="builder">The builder from <c>AddFlannel()</c>.</param>
    /// <param name="configuration">The section holding <see cref="KubeSubnetStoreOptions"/>.</param>
    public static IFlannelBuilder AddKubeSubnetStore(this IFlannelBuilder builder, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        AddKubeSubnetStoreServices(builder).Bind(configuration);
        return builder;
    }

    private static OptionsBuilder<KubeSubnetStoreOptions> AddKubeSubnetStoreServices(IFlannelBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        IServiceCollection services = builder.Services;
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<KubeSubnetStoreOptions>, KubeSubnetStoreOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<KubeSubnetStore>();
        services.Replace(ServiceDescriptor.Singleton<ISubnetStore>(sp => sp.GetRequiredService<KubeSubnetStore>()));
        return services.AddOptions<KubeSubnetStoreOptions>().ValidateOnStart();
    }
}
