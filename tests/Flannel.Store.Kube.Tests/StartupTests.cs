using System.Net;
using Flannel.Configuration;
using Flannel.Store.Kube.Tests.ApiDouble;
using Flannel.Store.Kube.Tests.Fixtures;
using Flannel.Subnets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Flannel.Store.Kube.Tests;

public class StartupTests
{
    private static KubeSubnetStore StoreWithEnvironment(KubeApiServerDouble server, Dictionary<string, string> environment, string? netConfPath = null)
    {
        KubeSubnetStoreOptions options = new() { ApiUrl = server.Url, NetConfigPath = netConfPath ?? "/nonexistent/net-conf.json" };
        return new KubeSubnetStore(
            options,
            NullLogger.Instance,
            TimeProvider.System,
            name => environment.GetValueOrDefault(name));
    }

    [Fact]
    public async Task No_Kubernetes_client_is_built_before_the_first_call_that_talks_to_the_API()
    {
        string netConf = Path.Combine(Directory.CreateTempSubdirectory("flannel-kube-lazy-").FullName, "net-conf.json");
        await File.WriteAllTextAsync(netConf, """{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}""", TestContext.Current.CancellationToken);
        using var store = new KubeSubnetStore(
            new KubeSubnetStoreOptions { KubeconfigFile = "/nonexistent/kubeconfig", NetConfigPath = netConf },
            NullLogger.Instance,
            TimeProvider.System,
            name => name == "NODE_NAME" ? "worker-1" : null);

        // The kubeconfig is not read by the constructor, nor for the network config (a local file).
        Assert.Equal(IPNetwork.Parse("10.244.0.0/16"), (await store.GetNetworkConfigAsync(KubeStoreHarness.Timeout())).Network);

        Exception e = await Assert.ThrowsAnyAsync<Exception>(async () => await store.GetNodeHintsAsync(null, KubeStoreHarness.Timeout()));
        Assert.Contains("/nonexistent/kubeconfig", e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_node_name_comes_from_NODE_NAME()
    {
        await using KubeApiServerDouble server = await KubeApiServerDouble.StartAsync();
        server.AddNode(NodeFixtures.Node("worker-7", "198.18.0.17", "10.244.7.0/24"));
        using KubeSubnetStore store = StoreWithEnvironment(server, new() { ["NODE_NAME"] = "worker-7", ["POD_NAME"] = "ignored" });

        await store.GetNodeHintsAsync(null, KubeStoreHarness.Timeout());

        Assert.Equal("worker-7", store.NodeName);
        Assert.DoesNotContain(server.Requests, r => r.Path.Contains("/pods/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_NODE_NAME_the_node_name_is_the_spec_nodeName_of_our_pod()
    {
        await using KubeApiServerDouble server = await KubeApiServerDouble.StartAsync();
        server.AddNode(NodeFixtures.Node("worker-7", "198.18.0.17", "10.244.7.0/24"));
        server.AddPod(NodeFixtures.FlannelPod("kube-flannel-ds-x7k2p", "kube-flannel", "worker-7"));
        using KubeSubnetStore store = StoreWithEnvironment(server, new() { ["POD_NAME"] = "kube-flannel-ds-x7k2p", ["POD_NAMESPACE"] = "kube-flannel" });

        await store.GetNodeHintsAsync(null, KubeStoreHarness.Timeout());

        Assert.Equal("worker-7", store.NodeName);
        Assert.Contains(server.Requests, r => r.Method == "GET" && r.Path == "/api/v1/namespaces/kube-flannel/pods/kube-flannel-ds-x7k2p");
    }

    [Fact]
    public async Task Missing_pod_variables_give_flannels_error()
    {
        await using KubeApiServerDouble server = await KubeApiServerDouble.StartAsync();
        using KubeSubnetStore store = StoreWithEnvironment(server, new() { ["POD_NAME"] = "kube-flannel-ds-x7k2p" });

        KubeSubnetStoreException e = await Assert.ThrowsAsync<KubeSubnetStoreException>(async () => await store.GetNodeHintsAsync(null, KubeStoreHarness.Timeout()));

        Assert.Equal("env variables POD_NAME and POD_NAMESPACE must be set", e.Message);
    }

    [Fact]
    public async Task A_pod_without_a_node_gives_flannels_error()
    {
        await using KubeApiServerDouble server = await KubeApiServerDouble.StartAsync();
        server.AddPod(NodeFixtures.FlannelPod("kube-flannel-ds-x7k2p", "kube-flannel", nodeName: null));
        using KubeSubnetStore store = StoreWithEnvironment(server, new() { ["POD_NAME"] = "kube-flannel-ds-x7k2p", ["POD_NAMESPACE"] = "kube-flannel" });

        KubeSubnetStoreException e = await Assert.ThrowsAsync<KubeSubnetStoreException>(async () => await store.GetNodeHintsAsync(null, KubeStoreHarness.Timeout()));

        Assert.Equal("node name not present in pod spec 'kube-flannel/kube-flannel-ds-x7k2p'", e.Message);
    }

    [Fact]
    public async Task A_missing_pod_gives_flannels_error_with_the_api_answer()
    {
        await using KubeApiServerDouble server = await KubeApiServerDouble.StartAsync();
        using KubeSubnetStore store = StoreWithEnvironment(server, new() { ["POD_NAME"] = "kube-flannel-ds-gone", ["POD_NAMESPACE"] = "kube-flannel" });

        KubeSubnetStoreException e = await Assert.ThrowsAsync<KubeSubnetStoreException>(async () => await store.GetNodeHintsAsync(null, KubeStoreHarness.Timeout()));

        Assert.Equal("error retrieving pod spec for 'kube-flannel/kube-flannel-ds-gone': 404 NotFound: pods \"kube-flannel-ds-gone\" not found", e.Message);
    }

    [Fact]
    public async Task Net_conf_is_only_parsed_in_kube_mode()
    {
        // SubnetLen 31 fails CheckNetworkConfig (etcd mode); flannel's kube mode never runs it, so neither do we.
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync("""{"Network":"10.244.0.0/16","SubnetLen":31,"Backend":{"Type":"host-gw"}}""");

        NetworkConfig config = await h.Store.GetNetworkConfigAsync(KubeStoreHarness.Timeout());

        Assert.Equal(IPNetwork.Parse("10.244.0.0/16"), config.Network);
        Assert.Equal(31, config.SubnetLen);
        Assert.Equal("host-gw", config.BackendType);
    }

    [Fact]
    public async Task Net_conf_errors_carry_flannels_prefixes()
    {
        await using KubeApiServerDouble server = await KubeApiServerDouble.StartAsync();
        using KubeSubnetStore missing = StoreWithEnvironment(server, new() { ["NODE_NAME"] = "n" }, "/nonexistent/net-conf.json");
        NetworkConfigException notRead = await Assert.ThrowsAsync<NetworkConfigException>(async () => await missing.GetNetworkConfigAsync(KubeStoreHarness.Timeout()));
        Assert.StartsWith("failed to read net conf: ", notRead.Message, StringComparison.Ordinal);
        Assert.Contains("/nonexistent/net-conf.json", notRead.Message, StringComparison.Ordinal);

        string path = Path.Combine(Directory.CreateTempSubdirectory("flannel-kube-").FullName, "net-conf.json");
        await File.WriteAllTextAsync(path, """{"Network":"10.244.0.0/16",""", TestContext.Current.CancellationToken);
        using KubeSubnetStore broken = StoreWithEnvironment(server, new() { ["NODE_NAME"] = "n" }, path);
        NetworkConfigException notParsed = await Assert.ThrowsAsync<NetworkConfigException>(async () => await broken.GetNetworkConfigAsync(KubeStoreHarness.Timeout()));
        Assert.StartsWith("error parsing subnet config: ", notParsed.Message, StringComparison.Ordinal);
        Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
    }

    [Fact]
    public async Task The_store_is_registered_as_ISubnetStore_and_as_itself()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync();

        Assert.Same(h.Store, h.Services.GetRequiredService<ISubnetStore>());
    }

    [Fact]
    public void Bad_options_fail_validation_with_every_problem_named()
    {
        ServiceCollection services = new();
        services.AddLogging();
        services.AddFlannel().AddKubeSubnetStore(o =>
        {
            o.ApiUrl = "ftp://10.0.0.1";
            o.KubeconfigFile = "/nonexistent/kubeconfig";
            o.AnnotationPrefix = "a.com/b/c";
            o.NetConfigPath = " ";
            o.WatchMaxBackoff = TimeSpan.FromMilliseconds(1);
        });
        using ServiceProvider provider = services.BuildServiceProvider();

        OptionsValidationException e = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<KubeSubnetStoreOptions>>().Value);

        Assert.Contains(e.Failures, f => f.StartsWith("ApiUrl 'ftp://10.0.0.1'", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.StartsWith("KubeconfigFile '/nonexistent/kubeconfig' does not exist", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f == "AnnotationPrefix 'a.com/b/c': subnet/kube: prefix can contain at most single slash (--kube-annotation-prefix).");
        Assert.Contains(e.Failures, f => f.StartsWith("NetConfigPath", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.StartsWith("WatchMaxBackoff", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_kubeconfig_file_selects_the_server_and_the_api_url_overrides_it()
    {
        await using KubeApiServerDouble server = await KubeApiServerDouble.StartAsync();
        server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24", NodeFixtures.FlannelVxlanAnnotations("198.18.0.11", "12:c6:65:89:b4:e3")));
        string directory = Directory.CreateTempSubdirectory("flannel-kube-").FullName;
        try
        {
            string kubeconfig = Path.Combine(directory, "kubeconfig");
            await File.WriteAllTextAsync(kubeconfig, Kubeconfig(server.Url), TestContext.Current.CancellationToken);
            string unreachable = Path.Combine(directory, "kubeconfig-elsewhere");
            await File.WriteAllTextAsync(unreachable, Kubeconfig("http://127.0.0.1:9"), TestContext.Current.CancellationToken);

            foreach ((string file, string? apiUrl) in new[] { (kubeconfig, (string?)null), (unreachable, server.Url) })
            {
                ServiceCollection services = new();
                services.AddLogging();
                services.AddFlannel().AddKubeSubnetStore(o =>
                {
                    o.KubeconfigFile = file;
                    o.ApiUrl = apiUrl;
                    o.NodeName = "node-a";
                });
                await using ServiceProvider provider = services.BuildServiceProvider();

                NodeHints hints = await provider.GetRequiredService<ISubnetStore>().GetNodeHintsAsync(null, KubeStoreHarness.Timeout());

                Assert.Equal("vxlan", hints.PreviousAttributes?.BackendType);
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static string Kubeconfig(string server) => $"""
        apiVersion: v1
        kind: Config
        clusters:
        - cluster:
            server: {server}
          name: test
        contexts:
        - context:
            cluster: test
            user: flannel
          name: test
        current-context: test
        users:
        - name: flannel
          user:
            token: not-a-real-token
        """;
}
