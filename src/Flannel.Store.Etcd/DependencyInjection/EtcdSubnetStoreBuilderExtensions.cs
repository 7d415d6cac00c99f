using Flannel.Store.Etcd;
using Flannel.Subnets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the etcd subnet store to a Flannel.NET agent.</summary>
public static class EtcdSubnetStoreBuilderExtensions
{
    /// <summary>
    /// Uses etcd as the subnet store (flanneld's default mode). The options are validated when the host starts:
    /// endpoints, prefix, TLS files (which must exist), credentials and SubnetLeaseRenewMargin (1..1439).
    /// </summary>
    /// <example><code>
    /// services.AddFlannel().AddEtcdSubnetStore(o =>
    /// {
    ///     o.Endpoints = "https://10.0.0.1:2379,https://10.0.0.2:2379";
    ///     o.CaFile = "/etc/flannel/ca.pem"; o.CertFile = "/etc/flannel/client.pem"; o.KeyFile = "/etc/flannel/client-key.pem";
    /// });
    /// </code></example>
    /// <param name="builder">The builder from <c>AddFlannel()</c>.</param>
    /// <param name="configure">Sets the options (endpoints, prefix, TLS files, credentials, timeouts).</param>
    public static IFlannelBuilder AddEtcdSubnetStore(this IFlannelBuilder builder, Action<EtcdSubnetStoreOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        AddEtcdSubnetStoreServices(builder).Configure(configure);
        return builder;
    }

    /// <summary>
    /// Uses etcd as the subnet store (see <see cref="AddEtcdSubnetStore(IFlannelBuilder, Action{EtcdSubnetStoreOptions})"/>)
    /// with options bound from a configuration section, e.g.
    /// <c>{ Endpoints: "https://10.0.0.1:2379", Prefix: "/coreos.com/network", CaFile: "/etc/flannel/ca.pem" }</c>.
    /// </summary>
    /// <param name="builder">The builder from <c>AddFlannel()</c>.</param>
    /// <param name="configuration">The section holding <see cref="EtcdSubnetStoreOptions"/>.</param>
    public static IFlannelBuilder AddEtcdSubnetStore(this IFlannelBuilder builder, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        AddEtcdSubnetStoreServices(builder).Bind(configuration);
        return builder;
    }

    /// <summary>Uses etcd as the subnet store with the default options (etcd on http://127.0.0.1:2379, flannel's prefix).</summary>
    /// <param name="builder">The builder from <c>AddFlannel()</c>.</param>
    public static IFlannelBuilder AddEtcdSubnetStore(this IFlannelBuilder builder)
    {
        AddEtcdSubnetStoreServices(builder);
        return builder;
    }

    private static OptionsBuilder<EtcdSubnetStoreOptions> AddEtcdSubnetStoreServices(IFlannelBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<EtcdSubnetStoreOptions>, EtcdSubnetStoreOptionsAnnotationsValidator>());
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<EtcdSubnetStoreOptions>, EtcdSubnetStoreOptionsValidator>());
        builder.Services.TryAddSingleton<EtcdSubnetStore>();
        builder.Services.Replace(ServiceDescriptor.Singleton<ISubnetStore>(sp => sp.GetRequiredService<EtcdSubnetStore>()));
        return builder.Services.AddOptions<EtcdSubnetStoreOptions>().ValidateOnStart();
    }
}
