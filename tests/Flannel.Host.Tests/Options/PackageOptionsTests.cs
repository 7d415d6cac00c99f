using Flannel.Backends.Extension;
using Flannel.Backends.HostGw;
using Flannel.Backends.Vxlan;
using Flannel.Backends.WireGuard;
using Flannel.Store.Etcd;
using Flannel.Store.Kube;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Flannel.Host.Tests.Options;

/// <summary>
/// Every package registers its options the same way: bound from an <see cref="IConfiguration"/> section (through the
/// binding source generator) or set in code, and validated when the host starts with messages that name the option
/// and the value. The reference host resolves them here as an embedder's host would.
/// </summary>
public sealed class PackageOptionsTests
{
    public static TheoryData<string, string, string, string> InvalidValues => new()
    {
        { "host-gw", "ResyncInterval", "00:00:00", "ResyncInterval: '00:00:00' is not a positive duration (HostGwBackendOptions)." },
        { "vxlan", "ResyncInterval", "-00:00:01", "ResyncInterval: '-00:00:01' is not a positive duration (VxlanBackendOptions)." },
        { "wireguard", "WireGuardGoStartTimeout", "00:00:00", "WireGuardGoStartTimeout: '00:00:00' is not a positive duration (WireGuardBackendOptions)." },
        { "extension", "CommandTimeout", "00:00:00", "CommandTimeout: '00:00:00' is not a positive duration (ExtensionBackendOptions)." },
        { "etcd", "Prefix", "coreos.com/network", "Prefix 'coreos.com/network' must start with '/'" },
        { "kube", "ApiUrl", "ftp://10.0.0.1", "ApiUrl 'ftp://10.0.0.1' is not an absolute http:// or https:// URL" },
    };

    [Theory]
    [MemberData(nameof(InvalidValues))]
    public void A_bad_value_from_configuration_fails_validation_naming_the_option_and_the_value(string package, string key, string value, string message)
    {
        IConfiguration section = Section(new() { [key] = value });
        using ServiceProvider provider = Register(package, section);
        OptionsValidationException error = Assert.Throws<OptionsValidationException>(() => Resolve(provider, package));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_bind_from_configuration_sections()
    {
        IConfiguration configuration = Section(new()
        {
            ["HostGw:ResyncInterval"] = "00:00:30",
            ["Vxlan:RouteMode"] = "NexthopObjects",
            ["WireGuard:ControlPath"] = "Userspace",
            ["WireGuard:SocketDirectory"] = "/run/node1/wireguard",
            ["Extension:Shell"] = "/bin/bash",
            ["Extension:MaxOutputCharacters"] = "4096",
            ["Etcd:Endpoints"] = "http://127.0.0.1:23790",
            ["Etcd:Prefix"] = "/test/network",
            ["Kube:NodeName"] = "node-1",
            ["Kube:ListPageSize"] = "50",
        });
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddFlannel()
            .AddHostGwBackend(configuration.GetSection("HostGw"))
            .AddVxlanBackend(configuration.GetSection("Vxlan"))
            .AddWireGuardBackend(configuration.GetSection("WireGuard"))
            .AddExtensionBackend(configuration.GetSection("Extension"))
            .AddEtcdSubnetStore(configuration.GetSection("Etcd"))
            .AddKubeSubnetStore(configuration.GetSection("Kube"));
        using ServiceProvider provider = services.BuildServiceProvider();

        Assert.Equal(TimeSpan.FromSeconds(30), provider.GetRequiredService<IOptions<HostGwBackendOptions>>().Value.ResyncInterval);
        Assert.Equal(VxlanRouteMode.NexthopObjects, provider.GetRequiredService<IOptions<VxlanBackendOptions>>().Value.RouteMode);
        WireGuardBackendOptions wireGuard = provider.GetRequiredService<IOptions<WireGuardBackendOptions>>().Value;
        Assert.Equal((WireGuardControlPath.Userspace, "/run/node1/wireguard"), (wireGuard.ControlPath, wireGuard.SocketDirectory));
        ExtensionBackendOptions extension = provider.GetRequiredService<IOptions<ExtensionBackendOptions>>().Value;
        Assert.Equal(("/bin/bash", 4096), (extension.Shell, extension.MaxOutputCharacters));
        EtcdSubnetStoreOptions etcd = provider.GetRequiredService<IOptions<EtcdSubnetStoreOptions>>().Value;
        Assert.Equal(("http://127.0.0.1:23790", "/test/network"), (etcd.Endpoints, etcd.Prefix));
        KubeSubnetStoreOptions kube = provider.GetRequiredService<IOptions<KubeSubnetStoreOptions>>().Value;
        Assert.Equal(("node-1", 50), (kube.NodeName, kube.ListPageSize));
    }

    [Fact]
    public void A_blank_required_text_option_fails_validation()
    {
        using ServiceProvider provider = Register("extension", Section(new() { ["Shell"] = " " }));
        OptionsValidationException error = Assert.Throws<OptionsValidationException>(() => Resolve(provider, "extension"));
        Assert.Contains("Shell", error.Message, StringComparison.Ordinal);
    }

    private static IConfiguration Section(Dictionary<string, string?> values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values).Build();

    private static ServiceProvider Register(string package, IConfiguration section)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        IFlannelBuilder flannel = services.AddFlannel();
        _ = package switch
        {
            "host-gw" => flannel.AddHostGwBackend(section),
            "vxlan" => flannel.AddVxlanBackend(section),
            "wireguard" => flannel.AddWireGuardBackend(section),
            "extension" => flannel.AddExtensionBackend(section),
            "etcd" => flannel.AddEtcdSubnetStore(section),
            "kube" => flannel.AddKubeSubnetStore(section),
            _ => throw new ArgumentOutOfRangeException(nameof(package), package, "unknown package"),
        };
        return services.BuildServiceProvider();
    }

    private static object Resolve(IServiceProvider provider, string package) => package switch
    {
        "host-gw" => provider.GetRequiredService<IOptions<HostGwBackendOptions>>().Value,
        "vxlan" => provider.GetRequiredService<IOptions<VxlanBackendOptions>>().Value,
        "wireguard" => provider.GetRequiredService<IOptions<WireGuardBackendOptions>>().Value,
        "extension" => provider.GetRequiredService<IOptions<ExtensionBackendOptions>>().Value,
        "etcd" => provider.GetRequiredService<IOptions<EtcdSubnetStoreOptions>>().Value,
        "kube" => provider.GetRequiredService<IOptions<KubeSubnetStoreOptions>>().Value,
        _ => throw new ArgumentOutOfRangeException(nameof(package), package, "unknown package"),
    };
}
