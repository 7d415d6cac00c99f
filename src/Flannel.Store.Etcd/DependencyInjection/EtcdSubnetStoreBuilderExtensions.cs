using Flannel.Store.Etcd;
using Flannel.Subnets;
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
    public static IFlannelBuilder AddEtcdSubnetStore(this IFlannelBuilder builder, Action<EtcdSubnetStoreOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        OptionsBuilder<EtcdSubnetStoreOptions> options = builder.Services.AddOptions<EtcdSubnetStoreOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<EtcdSubnetStoreOptions>, EtcdSubnetStoreOptionsAnnotationsValidator>());
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<EtcdSubnetStoreOptions>, EtcdSubnetStoreOptionsValidator>());
        builder.Services.TryAddSingleton<EtcdSubnetStore>();
        builder.Services.Replace(ServiceDescriptor.Singleton<ISubnetStore>(sp => sp.GetRequiredService<EtcdSubnetStore>()));
        return builder;
    }
}
