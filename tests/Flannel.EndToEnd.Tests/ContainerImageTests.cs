using System.Net;
using System.Text.Json;
using Flannel.Testing.Namespaces;


namespace Flannel.EndToEnd.Tests;

/// <summary>
/// The image scripts/build-image.sh builds, run by a real OCI runtime (podman with runc), never pulled from a registry:
/// the binaries work inside it, install-cni writes into host directories, and flanneld from the image joins a
/// cluster of native flanneld processes with only NET_ADMIN and NET_RAW.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ContainerImageTests(ContainerImage image) : IClassFixture<ContainerImage>
{
    private const string Conflist = """
        {
          "name": "cbr0",
          "cniVersion": "0.3.1",
          "plugins": [
            { "type": "flannel", "delegate": { "hairpinMode": true, "isDefaultGateway": true } },
            { "type": "portmap", "capabilities": { "portMappings": true } }
          ]
        }
        """;

    [Fact]
    public async Task Flanneld_version_and_the_CNI_plugins_VERSION_work_inside_the_container()
    {
        image.RequirePrerequisites();

        ProcessResult version = await image.RunAsync([], [], "--version");
        ProcessResult cni = await image.RunAsync([], ["--entrypoint", "/flannel", "--env", "CNI_COMMAND=VERSION"]);

        Assert.True(version.ExitCode == 0, version.StandardError);
        Assert.Matches(@"^v\d+\.\d+\.\d+", version.StandardError.Trim());
        Assert.True(cni.ExitCode == 0, cni.StandardError);
        Assert.Equal("""{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}""", cni.StandardOutput.Trim());
    }

    [Fact]
    public async Task The_image_runs_flanneld_by_default_is_labelled_and_has_no_shell()
    {
        image.RequirePrerequisites();

        ProcessResult config = await image.InspectAsync("{{json .Config}}");
        ProcessResult shell = await image.RunAsync([], ["--entrypoint", "/bin/sh"], "-c", "true");

        Assert.True(config.ExitCode == 0, config.StandardError);
        using JsonDocument json = JsonDocument.Parse(config.StandardOutput);
        Assert.Equal(["/opt/bin/flanneld"], json.RootElement.GetProperty("Entrypoint").EnumerateArray().Select(e => e.GetString()));
        JsonElement labels = json.RootElement.GetProperty("Labels");
        Assert.Equal("flanneld", labels.GetProperty("org.opencontainers.image.title").GetString());
        Assert.Matches(@"^\d+\.\d+\.\d+", labels.GetProperty("org.opencontainers.image.version").GetString());
        // deploy/kube-flannel.yml names this image (tests/Flannel.Store.Kube.Tests/ManifestTests).
        Assert.Equal($"docker.io/flannel-dotnet/flanneld:{labels.GetProperty("org.opencontainers.image.version").GetString()}", image.Name);
        Assert.StartsWith("https://", labels.GetProperty("org.opencontainers.image.source").GetString(), StringComparison.Ordinal);
        Assert.Matches("^[0-9a-f]{40}$", labels.GetProperty("org.opencontainers.image.revision").GetString());
        Assert.NotEqual(0, shell.ExitCode); // nothing to exec: the init step needs no shell either
    }

    [Fact]
    public async Task Install_cni_writes_the_plugin_and_the_conflist_into_bind_mounted_host_directories()
    {
        image.RequirePrerequisites();
        string root = Directory.CreateTempSubdirectory("flannel-image-cni-").FullName;
        try
        {
            string bin = Directory.CreateDirectory(Path.Combine(root, "opt-cni-bin")).FullName;
            string net = Directory.CreateDirectory(Path.Combine(root, "etc-cni-net.d")).FullName;
            string config = Directory.CreateDirectory(Path.Combine(root, "kube-flannel-cfg")).FullName;
            await File.WriteAllTextAsync(Path.Combine(config, "cni-conf.json"), Conflist);

            // The DaemonSet's init container: the host's directories mounted, the ConfigMap read-only, no capabilities needed.
            ProcessResult install = await image.RunAsync(
                [(bin, "/opt/cni/bin"), (net, "/etc/cni/net.d"), (config, "/etc/kube-flannel:ro")],
                ["--cap-drop", "all"],
                "install-cni");

            Assert.True(install.ExitCode == 0, install.StandardError);
            string plugin = Path.Combine(bin, "flannel");
            string conflist = Path.Combine(net, "10-flannel.conflist");
            Assert.Equal((UnixFileMode)0b111_101_101, File.GetUnixFileMode(plugin));
            Assert.Equal((UnixFileMode)0b110_100_100, File.GetUnixFileMode(conflist));
            Assert.Equal(Conflist, await File.ReadAllTextAsync(conflist));
            Assert.Equal(await File.ReadAllBytesAsync(VirtualCluster.CniPluginPath), await File.ReadAllBytesAsync(plugin));
            Assert.Contains("install-cni: installed /flannel as /opt/cni/bin/flannel (0755,", install.StandardError, StringComparison.Ordinal);

            // The installed plugin runs on the host.
            ProcessResult version = await NetworkNamespace.RunProcessAsync(["env", "CNI_COMMAND=VERSION", plugin], CancellationToken.None);
            Assert.Contains("\"cniVersion\":\"1.1.0\"", version.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task Flanneld_from_the_image_joins_a_node_namespace_reaches_ready_and_programs_its_peers()
    {
        VirtualCluster.RequirePrerequisites();
        image.RequirePrerequisites();
        Flannel.Testing.Privileged.RequireExecutable("curl");

        // node1 runs flanneld from the image (podman, the node's network namespace, NET_ADMIN and NET_RAW only);
        // node2 and node3 run the native binary. StartAsync returns once every node routes to every other.
        await using VirtualCluster cluster = await VirtualCluster.StartAsync("vxlan", ClusterFamilies.IPv4, image, new HashSet<string>(["node1"]));

        NetworkNamespace node1 = cluster.Nodes["node1"];
        ProcessResult ready = await node1.RunAsync("curl", "--silent", "--show-error", "--max-time", "5",
            $"http://{cluster.NodeAddresses["node1"]}:{VirtualCluster.HealthzPort}/readyz");
        Assert.True(ready.ExitCode == 0 && ready.StandardOutput.Contains("flanneld is ready", StringComparison.Ordinal),
            $"readyz: {ready.StandardOutput} {ready.StandardError}\n{cluster.FlanneldLog("node1")}");

        // The peers node1's flanneld programmed: neighbour, FDB entry and the onlink route of node2.
        IPNetwork peer = cluster.Subnet("node2");
        string route = await node1.RunCheckedAsync("ip", "route", "show", peer.ToString());
        Assert.Contains($"via {peer.BaseAddress} dev flannel.1", route, StringComparison.Ordinal);
        Assert.Contains("onlink", route, StringComparison.Ordinal);
        Assert.Contains(cluster.NodeAddresses["node2"], await node1.RunCheckedAsync("bridge", "fdb", "show", "dev", "flannel.1"), StringComparison.Ordinal);
        Assert.Contains("flanneld masq", await node1.RunCheckedAsync("iptables", "-t", "nat", "-S", "POSTROUTING"), StringComparison.Ordinal);

        // And traffic flows between a pod on node1 and one on node2.
        (NetworkNamespace pod1, IPAddress ip1) = await cluster.AddPodAsync("node1", "pod-a");
        (NetworkNamespace pod2, IPAddress ip2) = await cluster.AddPodAsync("node2", "pod-b");
        Assert.True(await VirtualCluster.PingAsync(pod1, ip2), $"pod on node1 (image) cannot reach {ip2}\n{cluster.FlanneldLog("node1")}");
        Assert.True(await VirtualCluster.PingAsync(pod2, ip1), $"pod on node2 cannot reach {ip1} on node1 (image)");
    }
}
