using System.Net;
using Flannel.Testing.Namespaces;

namespace Flannel.EndToEnd.Tests;

/// <summary>
/// Three real flanneld processes in node namespaces, a real etcd on the underlay, pods through the flannel CNI
/// plugin and the real bridge/host-local plugins: the product as a user runs it.
/// </summary>
public sealed class EndToEndTests
{
    private static string[] GoldenMasqueradeRules(IPNetwork pod) =>
    [
        // flannel's e2e golden rules (e2e/rules.go), `iptables -t nat -S FLANNEL-POSTRTG`.
        "-N FLANNEL-POSTRTG",
        "-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment \"flanneld masq\" -j RETURN",
        $"-A FLANNEL-POSTRTG -s {pod} -d 10.244.0.0/16 -m comment --comment \"flanneld masq\" -j RETURN",
        $"-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d {pod} -m comment --comment \"flanneld masq\" -j RETURN",
        $"-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d {pod} -m comment --comment \"flanneld masq\" -j RETURN",
        "-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully",
        "-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully",
    ];

    private static readonly string[] GoldenForwardRules =
    [
        "-N FLANNEL-FWD",
        "-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT",
        "-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT",
    ];

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [Fact]
    public async Task Vxlan_pods_on_different_nodes_ping_both_ways_and_rules_match_flannels_golden_rules()
    {
        VirtualCluster.RequirePrerequisites();
        await using VirtualCluster cluster = await VirtualCluster.StartAsync("vxlan");
        (NetworkNamespace pod1, IPAddress ip1) = await cluster.AddPodAsync("node1", "pod-a");
        (NetworkNamespace pod2, IPAddress ip2) = await cluster.AddPodAsync("node2", "pod-b");

        Assert.True(await VirtualCluster.PingAsync(pod1, ip2), $"pod on node1 cannot reach {ip2} on node2");
        Assert.True(await VirtualCluster.PingAsync(pod2, ip1), $"pod on node2 cannot reach {ip1} on node1");

        foreach ((string node, NetworkNamespace ns) in cluster.Nodes)
        {
            Assert.Equal(GoldenMasqueradeRules(cluster.Subnet(node)), Lines(await ns.RunCheckedAsync("iptables", "-t", "nat", "-S", "FLANNEL-POSTRTG")));
            Assert.Equal(GoldenForwardRules, Lines(await ns.RunCheckedAsync("iptables", "-t", "filter", "-S", "FLANNEL-FWD")));
            Assert.Contains("-A POSTROUTING -m comment --comment \"flanneld masq\" -j FLANNEL-POSTRTG", Lines(await ns.RunCheckedAsync("iptables", "-t", "nat", "-S", "POSTROUTING")));
            Assert.Contains("-A FORWARD -m comment --comment \"flanneld forward\" -j FLANNEL-FWD", Lines(await ns.RunCheckedAsync("iptables", "-t", "filter", "-S", "FORWARD")));
            string env = await File.ReadAllTextAsync(cluster.SubnetFile(node));
            Assert.Equal($"FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET={cluster.Subnet(node).BaseAddress.ToString()[..^1]}1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n", env);

            // etcd is plain http here, so nothing needs OpenSSL: loading it costs every node 3.4 MiB of resident pages
            // (the VtepMAC, subnet.env's temporary name and the race jitter once drew from RandomNumberGenerator).
            string[] openSsl = [.. File.ReadLines($"/proc/{cluster.FlanneldPid(node)}/maps").Where(line => line.Contains("libcrypto") || line.Contains("libssl")).Take(1)];
            Assert.True(openSsl.Length == 0, $"flanneld on {node} loaded OpenSSL without TLS: {string.Join("", openSsl)}");
        }
    }

    [Fact]
    public async Task Restarting_a_flanneld_keeps_its_subnet_and_pods_keep_reaching_each_other()
    {
        VirtualCluster.RequirePrerequisites();
        await using VirtualCluster cluster = await VirtualCluster.StartAsync("vxlan");
        (NetworkNamespace pod1, IPAddress ip1) = await cluster.AddPodAsync("node1", "pod-a");
        (NetworkNamespace pod2, IPAddress ip2) = await cluster.AddPodAsync("node2", "pod-b");
        IPNetwork before = cluster.Subnet("node2");
        DateTime written = File.GetLastWriteTimeUtc(cluster.SubnetFile("node2"));

        await cluster.StopFlanneldAsync("node2");

        // Shutdown leaves the data plane intact: traffic keeps flowing while flanneld is down.
        Assert.True(await VirtualCluster.PingAsync(pod1, ip2), "pods stopped reaching each other while node2's flanneld was stopped");

        cluster.StartFlanneld("node2");
        await VirtualCluster.WaitUntilAsync(
            () => Task.FromResult(File.GetLastWriteTimeUtc(cluster.SubnetFile("node2")) > written),
            "the restarted flanneld to rewrite subnet.env\n" + cluster.FlanneldLog("node2"));
        Assert.Equal(before, cluster.Subnet("node2"));
        await cluster.WaitForMeshAsync();
        Assert.True(await VirtualCluster.PingAsync(pod1, ip2), "node1 -> node2 failed after the restart");
        Assert.True(await VirtualCluster.PingAsync(pod2, ip1), "node2 -> node1 failed after the restart");
    }

    [Fact]
    public async Task Deleting_a_peers_lease_in_etcd_removes_its_routes_on_the_other_nodes()
    {
        VirtualCluster.RequirePrerequisites();
        await using VirtualCluster cluster = await VirtualCluster.StartAsync("vxlan");
        IPNetwork gone = cluster.Subnet("node3");

        // Stop node3 first: a running agent re-acquires a deleted lease (the compat decision), which is not what this test observes.
        await cluster.StopFlanneldAsync("node3");
        Assert.True(await cluster.HasRouteAsync("node1", gone));
        string key = $"{VirtualCluster.Prefix}/subnets/{gone.BaseAddress}-{gone.PrefixLength}";
        Assert.Equal("1", (await cluster.EtcdctlAsync("del", key)).Trim());

        foreach (string node in new[] { "node1", "node2" })
        {
            await VirtualCluster.WaitUntilAsync(async () => !await cluster.HasRouteAsync(node, gone), $"{node} to remove its route to {gone}");
            Assert.DoesNotContain(gone.BaseAddress.ToString(), await cluster.Nodes[node].RunCheckedAsync("ip", "neigh", "show", "dev", "flannel.1"), StringComparison.Ordinal);
        }

        Assert.True(await cluster.HasRouteAsync("node1", cluster.Subnet("node2")), "node1 lost its route to node2");
    }

    [Fact]
    public async Task With_ip_blackhole_route_local_pods_stay_reachable_and_an_empty_node_drops_its_subnet()
    {
        VirtualCluster.RequirePrerequisites();
        await using VirtualCluster cluster = await VirtualCluster.StartAsync("vxlan", "--ip-blackhole-route");
        IPNetwork subnet1 = cluster.Subnet("node1");
        IPNetwork subnet3 = cluster.Subnet("node3");
        await VirtualCluster.WaitUntilAsync(
            async () => (await cluster.Nodes["node1"].RunCheckedAsync("ip", "route", "show", "type", "blackhole")).Contains(subnet1.ToString(), StringComparison.Ordinal),
            "node1's blackhole route\n" + cluster.FlanneldLog("node1"));

        // The pods' bridge comes after the blackhole (the first pod of a fresh node), and the agent keeps resyncing.
        (NetworkNamespace pod1, IPAddress ip1) = await cluster.AddPodAsync("node1", "pod-a");
        (NetworkNamespace pod2, IPAddress ip2) = await cluster.AddPodAsync("node2", "pod-b");
        await Task.Delay(TimeSpan.FromSeconds(6)); // longer than --iptables-resync (5 s): a resync must not undo it
        Assert.Contains("dev cni0", await cluster.Nodes["node1"].RunCheckedAsync("ip", "route", "get", ip1.ToString()), StringComparison.Ordinal);
        Assert.Contains($"{subnet1} dev cni0 proto kernel", await cluster.Nodes["node1"].RunCheckedAsync("ip", "route", "show", subnet1.ToString()), StringComparison.Ordinal);
        Assert.True(await VirtualCluster.PingAsync(pod2, ip1), $"pod on node2 cannot reach {ip1} on node1");
        Assert.True(await VirtualCluster.PingAsync(pod1, ip2), $"pod on node1 cannot reach {ip2} on node2");

        // flanneld restarted on a node whose bridge already exists.
        await cluster.StopFlanneldAsync("node1");
        cluster.StartFlanneld("node1");
        await cluster.WaitForMeshAsync();
        await Task.Delay(TimeSpan.FromSeconds(6));
        Assert.Contains("dev cni0", await cluster.Nodes["node1"].RunCheckedAsync("ip", "route", "get", ip1.ToString()), StringComparison.Ordinal);
        Assert.True(await VirtualCluster.PingAsync(pod2, ip1), $"pod on node2 cannot reach {ip1} after node1's flanneld restarted");

        // A node without pods (no cni0): its unused pod addresses are dropped instead of following the default route.
        Assert.Contains($"blackhole {subnet3}", await cluster.Nodes["node3"].RunCheckedAsync("ip", "route", "show", subnet3.ToString()), StringComparison.Ordinal);
        ProcessResult get = await cluster.Nodes["node3"].RunAsync("ip", "route", "get", subnet3.BaseAddress.ToString()[..^1] + "7");
        Assert.NotEqual(0, get.ExitCode);
    }

    [Fact]
    public async Task HostGw_pods_on_different_nodes_ping_both_ways_over_plain_routes()
    {
        VirtualCluster.RequirePrerequisites();
        await using VirtualCluster cluster = await VirtualCluster.StartAsync("host-gw");
        (NetworkNamespace pod1, IPAddress ip1) = await cluster.AddPodAsync("node1", "pod-a");
        (NetworkNamespace pod2, IPAddress ip2) = await cluster.AddPodAsync("node3", "pod-c");

        string route = await cluster.Nodes["node1"].RunCheckedAsync("ip", "route", "show", cluster.Subnet("node3").ToString());
        Assert.Contains($"via {cluster.NodeAddresses["node3"]} dev eth0", route, StringComparison.Ordinal);
        Assert.False((await cluster.Nodes["node1"].RunAsync("ip", "link", "show", "flannel.1")).ExitCode == 0, "host-gw must not create flannel.1");
        Assert.Contains("FLANNEL_MTU=1500", await File.ReadAllTextAsync(cluster.SubnetFile("node1")), StringComparison.Ordinal);
        Assert.True(await VirtualCluster.PingAsync(pod1, ip2), $"pod on node1 cannot reach {ip2} on node3");
        Assert.True(await VirtualCluster.PingAsync(pod2, ip1), $"pod on node3 cannot reach {ip1} on node1");
    }

    [Fact]
    public async Task DualStack_vxlan_pods_ping_over_IPv4_and_IPv6_both_ways()
    {
        VirtualCluster.RequirePrerequisites();
        await using VirtualCluster cluster = await VirtualCluster.StartAsync("vxlan", ClusterFamilies.DualStack);
        (NetworkNamespace pod1, IPAddress ip1) = await cluster.AddPodAsync("node1", "pod-a");
        (NetworkNamespace pod2, IPAddress ip2) = await cluster.AddPodAsync("node2", "pod-b");
        IPAddress ip1v6 = await VirtualCluster.PodIPv6Async(pod1);
        IPAddress ip2v6 = await VirtualCluster.PodIPv6Async(pod2);

        foreach (string node in cluster.Nodes.Keys)
        {
            string env = await File.ReadAllTextAsync(cluster.SubnetFile(node));
            Assert.Contains("FLANNEL_IPV6_NETWORK=fd00:10:244::/56\n", env, StringComparison.Ordinal);
            Assert.Contains($"FLANNEL_IPV6_SUBNET={cluster.Subnet6(node).BaseAddress}1/64\n", env, StringComparison.Ordinal);
        }

        // flannel-v6.1 carries the IPv6 overlay: an onlink route, a permanent neighbour and an FDB entry to the peer's IPv6 underlay address.
        NetworkNamespace node1 = cluster.Nodes["node1"];
        IPNetwork peer6 = cluster.Subnet6("node2");
        Assert.Contains($"via {peer6.BaseAddress} dev flannel-v6.1", await node1.RunCheckedAsync("ip", "-6", "route", "show", peer6.ToString()), StringComparison.Ordinal);
        Assert.Contains("PERMANENT", await node1.RunCheckedAsync("ip", "-6", "neigh", "show", peer6.BaseAddress.ToString(), "dev", "flannel-v6.1"), StringComparison.Ordinal);
        Assert.Contains($"dst {cluster.NodeIPv6Addresses["node2"]}", await node1.RunCheckedAsync("bridge", "fdb", "show", "dev", "flannel-v6.1"), StringComparison.Ordinal);

        Assert.True(await VirtualCluster.PingAsync(pod1, ip2), $"IPv4: pod on node1 cannot reach {ip2}");
        Assert.True(await VirtualCluster.PingAsync(pod2, ip1), $"IPv4: pod on node2 cannot reach {ip1}");
        Assert.True(await VirtualCluster.PingAsync(pod1, ip2v6), $"IPv6: pod on node1 cannot reach {ip2v6}");
        Assert.True(await VirtualCluster.PingAsync(pod2, ip1v6), $"IPv6: pod on node2 cannot reach {ip1v6}");
    }

    [Fact]
    public async Task IPv6Only_hostgw_pods_ping_over_IPv6_with_etcd_in_flannels_key_format()
    {
        VirtualCluster.RequirePrerequisites();
        await using VirtualCluster cluster = await VirtualCluster.StartAsync("host-gw", ClusterFamilies.IPv6Only);
        (NetworkNamespace pod1, IPAddress ip1) = await cluster.AddPodAsync("node1", "pod-a");
        (NetworkNamespace pod3, IPAddress ip3) = await cluster.AddPodAsync("node3", "pod-c");
        Assert.Equal(System.Net.Sockets.AddressFamily.InterNetworkV6, ip1.AddressFamily);

        // flannel's key for an IPv6-only lease: the empty IPv4 part, then the IPv6 subnet.
        IPNetwork subnet3 = cluster.Subnet6("node3");
        string keys = await cluster.EtcdctlAsync("get", "--prefix", "--keys-only", $"{VirtualCluster.Prefix}/subnets");
        Assert.Contains($"{VirtualCluster.Prefix}/subnets/0.0.0.0-0&{subnet3.BaseAddress}-{subnet3.PrefixLength}", keys, StringComparison.Ordinal);
        string env = await File.ReadAllTextAsync(cluster.SubnetFile("node1"));
        Assert.DoesNotContain("FLANNEL_NETWORK=", env, StringComparison.Ordinal);
        Assert.StartsWith("FLANNEL_IPV6_NETWORK=fd00:10:244::/56\n", env, StringComparison.Ordinal);

        string route = await cluster.Nodes["node1"].RunCheckedAsync("ip", "-6", "route", "show", subnet3.ToString());
        Assert.Contains($"via {cluster.NodeIPv6Addresses["node3"]} dev eth0", route, StringComparison.Ordinal);
        Assert.True(await VirtualCluster.PingAsync(pod1, ip3), $"pod on node1 cannot reach {ip3} on node3");
        Assert.True(await VirtualCluster.PingAsync(pod3, ip1), $"pod on node3 cannot reach {ip1} on node1");
    }
}
