using Flannel.Agent;
using Flannel.Host.Cli;
using Flannel.Host.Hosting;
using Flannel.Store.Etcd;
using Flannel.Store.Kube;
using Flannel.Subnets;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Flannel.Host.Tests.Hosting;

public sealed class FlanneldHostTests
{
    [Fact]
    public void Every_agent_flag_reaches_the_agent_options()
    {
        FlanneldOptions options = FlanneldCommandLine.Parse(
        [
            "--subnet-file=/tmp/s.env", "--ip-masq", "--ip-masq-fully-random-disable", "--iface=eth1", "--iface=198.18.0.2",
            "--iface-regex=^eth", "--iface-can-reach=198.18.0.1", "--public-ip=198.18.0.9", "--public-ipv6=fd00::9",
            "--subnet-lease-renew-margin=30", "--iptables-resync=7", "--iptables-forward-rules=false", "--ip-blackhole-route",
        ], new Dictionary<string, string>());
        var agent = new FlannelAgentOptions();
        FlanneldHost.ApplyAgentOptions(agent, options);

        Assert.Equal("/tmp/s.env", agent.SubnetFile);
        Assert.True(agent.IpMasq);
        Assert.True(agent.IpMasqFullyRandomDisable);
        Assert.Equal(["eth1", "198.18.0.2"], agent.Iface);
        Assert.Equal(["^eth"], agent.IfaceRegex);
        Assert.Equal("198.18.0.1", agent.IfaceCanReach);
        Assert.Equal("198.18.0.9", agent.PublicIP);
        Assert.Equal("fd00::9", agent.PublicIPv6);
        Assert.Equal(30, agent.SubnetLeaseRenewMarginMinutes);
        Assert.Equal(TimeSpan.FromSeconds(7), agent.IptablesResync);
        Assert.False(agent.IptablesForwardRules);
        Assert.True(agent.IpBlackholeRoute);
        Assert.True(new FlannelAgentOptionsValidator().Validate(null, agent).Succeeded);
    }

    [Fact]
    public void Etcd_is_the_default_store_and_gets_the_etcd_flags()
    {
        FlanneldOptions options = FlanneldCommandLine.Parse(
            ["--etcd-endpoints=http://198.18.0.254:2379", "--etcd-prefix=/test/network", "--healthz-port=8081", "--healthz-ip=127.0.0.1"],
            new Dictionary<string, string>());
        using IHost host = FlanneldHost.Build(options);
        Assert.IsType<EtcdSubnetStore>(host.Services.GetRequiredService<ISubnetStore>());
        EtcdSubnetStoreOptions etcd = host.Services.GetRequiredService<IOptions<EtcdSubnetStoreOptions>>().Value;
        Assert.Equal("http://198.18.0.254:2379", etcd.Endpoints);
        Assert.Equal("/test/network", etcd.Prefix);
        // --healthz-port adds Kestrel, bound to --healthz-ip:--healthz-port only.
        Assert.NotNull(host.Services.GetService<Microsoft.AspNetCore.Hosting.Server.IServer>());
        KestrelServerOptions kestrel = host.Services.GetRequiredService<IOptions<KestrelServerOptions>>().Value;
        Assert.Equal("127.0.0.1:8081", Assert.Single(KestrelEndpoints(kestrel)));
        Assert.NotNull(host.Services.GetRequiredService<HealthCheckService>());
        Assert.NotNull(host.Services.GetRequiredService<FlannelAgent>());
    }

    [Fact]
    public void Without_healthz_port_no_web_server_is_built()
    {
        FlanneldOptions options = FlanneldCommandLine.Parse(["--etcd-endpoints=http://198.18.0.254:2379"], new Dictionary<string, string>());
        using IHost host = FlanneldHost.Build(options);
        Assert.Null(host.Services.GetService<Microsoft.AspNetCore.Hosting.Server.IServer>());
    }

    /// <summary>The endpoints configured in code (KestrelServerOptions keeps them in an internal list).</summary>
    private static IEnumerable<string> KestrelEndpoints(KestrelServerOptions kestrel)
    {
        var property = typeof(KestrelServerOptions).GetProperty("CodeBackedListenOptions", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!;
        foreach (object listen in (System.Collections.IEnumerable)property.GetValue(kestrel)!)
        {
            yield return ((ListenOptions)listen).IPEndPoint!.ToString();
        }
    }

    [Fact]
    public void Kube_subnet_mgr_selects_the_kube_store_and_folds_its_state_into_readiness()
    {
        FlanneldOptions options = FlanneldCommandLine.Parse(
            ["--kube-subnet-mgr", "--kube-api-url=http://127.0.0.1:1", "--net-config-path=/tmp/net-conf.json", "--kube-annotation-prefix=example.com"],
            new Dictionary<string, string> { ["NODE_NAME"] = "n1" });
        using IHost host = FlanneldHost.Build(options);
        KubeSubnetStoreOptions kube = host.Services.GetRequiredService<IOptions<KubeSubnetStoreOptions>>().Value;
        Assert.Equal("http://127.0.0.1:1", kube.ApiUrl);
        Assert.Equal("/tmp/net-conf.json", kube.NetConfigPath);
        Assert.Equal("example.com", kube.AnnotationPrefix);
        // The store itself reports its node state (no podCIDR yet, …), which the agent folds into readiness.
        Assert.IsAssignableFrom<ISubnetStoreStatus>(host.Services.GetRequiredService<ISubnetStore>());
    }
}
