using Flannel.Subnets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Flannel.Store.Etcd.Tests;

/// <summary>Options, endpoints and key layout: no etcd needed.</summary>
public sealed class OptionsTests
{
    [Theory]
    [InlineData("http://127.0.0.1:2379", "127.0.0.1", 2379, false)]
    [InlineData("https://etcd-0.example:4001", "etcd-0.example", 4001, true)]
    [InlineData("10.0.0.1:23790", "10.0.0.1", 23790, null)]
    [InlineData("10.0.0.1", "10.0.0.1", 2379, null)]
    [InlineData("https://10.0.0.1", "10.0.0.1", 2379, true)]
    [InlineData("http://[fd00::1]:2379", "fd00::1", 2379, false)]
    [InlineData(" http://a:1/ ", "a", 1, false)]
    public void Endpoints_parse_like_flanneld_accepts_them(string text, string host, int port, bool? https)
    {
        Assert.True(EtcdEndpoint.TryParse(text, out EtcdEndpoint endpoint, out string? error), error);
        Assert.Equal(new EtcdEndpoint(host, port, https), endpoint);
    }

    [Theory]
    [InlineData("unix:///var/run/etcd.sock", "unsupported scheme")]
    [InlineData("http://a:1/v2/keys", "not a URL")]
    [InlineData("", "empty")]
    public void Bad_endpoints_are_rejected_with_a_reason(string text, string reason)
    {
        Assert.False(EtcdEndpoint.TryParse(text, out _, out string? error));
        Assert.Contains(reason, error);
    }

    [Theory]
    [InlineData("/coreos.com/network", "/coreos.com/network/config", "/coreos.com/network/subnets/")]
    [InlineData("/coreos.com/network/", "/coreos.com/network/config", "/coreos.com/network/subnets/")]
    [InlineData("/vxlan/network", "/vxlan/network/config", "/vxlan/network/subnets/")]
    public void Keys_follow_flannels_layout(string prefix, string config, string subnets)
    {
        var keys = new EtcdKeyLayout(prefix);
        Assert.Equal(config, keys.ConfigKey);
        Assert.Equal(subnets, keys.SubnetsPrefix);
        Assert.Equal(subnets + "10.244.1.0-24&fd00:10:244:1::-64",
            keys.LeaseKey(System.Net.IPNetwork.Parse("10.244.1.0/24"), System.Net.IPNetwork.Parse("fd00:10:244:1::/64")));
        Assert.True(keys.TryParseLeaseKey(subnets + "10.244.1.0-24", out var v4, out var v6));
        Assert.Equal(System.Net.IPNetwork.Parse("10.244.1.0/24"), v4);
        Assert.Null(v6);
        Assert.False(keys.TryParseLeaseKey(subnets + "nested/10.244.1.0-24", out _, out _));
        Assert.False(keys.TryParseLeaseKey("/other/subnets/10.244.1.0-24", out _, out _));
    }

    [Fact]
    public async Task Valid_options_resolve_the_store_through_AddFlannel()
    {
        var services = new ServiceCollection();
        services.AddFlannel().AddEtcdSubnetStore(o => o.Endpoints = "http://127.0.0.1:1");
        using ServiceProvider provider = services.BuildServiceProvider();

        await provider.GetRequiredService<IAsyncStartupValidator>().ValidateAsync(TestContext.Current.CancellationToken);
        Assert.IsType<EtcdSubnetStore>(provider.GetRequiredService<ISubnetStore>());
        Assert.Same(provider.GetRequiredService<EtcdSubnetStore>(), provider.GetRequiredService<ISubnetStore>());
    }

    [Theory]
    [InlineData(nameof(EtcdSubnetStoreOptions.SubnetLeaseRenewMargin), "SubnetLeaseRenewMargin")]
    [InlineData(nameof(EtcdSubnetStoreOptions.CertFile), "CertFile ('/nonexistent/cert.pem') and KeyFile ('') must be set together")]
    [InlineData(nameof(EtcdSubnetStoreOptions.CaFile), "CaFile '/nonexistent/ca.pem' does not exist")]
    [InlineData(nameof(EtcdSubnetStoreOptions.Endpoints), "mixes http:// and https://")]
    [InlineData(nameof(EtcdSubnetStoreOptions.Prefix), "Prefix 'coreos.com' must start with '/'")]
    [InlineData(nameof(EtcdSubnetStoreOptions.Password), "Password is set but Username is not")]
    [InlineData(nameof(EtcdSubnetStoreOptions.LeaseTtl), "LeaseTtl '00:00:01' must be between 00:00:02 and 365.00:00:00")]
    [InlineData(nameof(EtcdSubnetStoreOptions.RequestTimeout), "RequestTimeout '00:11:00' must be between 00:00:00.0500000 and 00:10:00")]
    [InlineData(nameof(EtcdSubnetStoreOptions.WatchTimeout), "WatchProgressInterval (00:00:02) must be shorter than WatchTimeout (00:00:01)")]
    [InlineData(nameof(EtcdSubnetStoreOptions.WatchProgressInterval), "WatchProgressInterval '00:00:00.0500000' must be between 00:00:00.1000000 and 00:10:00")]
    public async Task Invalid_options_fail_at_startup_naming_the_option(string field, string message)
    {
        var services = new ServiceCollection();
        services.AddFlannel().AddEtcdSubnetStore(o =>
        {
            switch (field)
            {
                case nameof(o.SubnetLeaseRenewMargin): o.SubnetLeaseRenewMargin = 1440; break;
                case nameof(o.CertFile): o.CertFile = "/nonexistent/cert.pem"; o.Endpoints = "https://127.0.0.1:2379"; break;
                case nameof(o.CaFile): o.CaFile = "/nonexistent/ca.pem"; o.Endpoints = "https://127.0.0.1:2379"; break;
                case nameof(o.Endpoints): o.Endpoints = "http://a:1,https://b:2"; break;
                case nameof(o.Prefix): o.Prefix = "coreos.com"; break;
                case nameof(o.Password): o.Password = "x"; break;
                case nameof(o.LeaseTtl): o.LeaseTtl = TimeSpan.FromSeconds(1); break;
                case nameof(o.RequestTimeout): o.RequestTimeout = TimeSpan.FromMinutes(11); break;
                case nameof(o.WatchTimeout): o.WatchTimeout = TimeSpan.FromSeconds(1); break;
                case nameof(o.WatchProgressInterval): o.WatchProgressInterval = TimeSpan.FromMilliseconds(50); break;
            }
        });
        using ServiceProvider provider = services.BuildServiceProvider();

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(async () => await provider.GetRequiredService<IAsyncStartupValidator>().ValidateAsync(TestContext.Current.CancellationToken));
        Assert.Contains(message, ex.Message);
    }
}
