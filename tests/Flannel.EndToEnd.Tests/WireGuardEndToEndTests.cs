using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Flannel.Testing;
using Flannel.Testing.Namespaces;

namespace Flannel.EndToEnd.Tests;

/// <summary>
/// The wireguard backend end to end: three real flanneld processes with real etcd; the kernel here has no WireGuard
/// module, so each node's flanneld falls back to wireguard-go, which runs in the node's own mount namespace (a private
/// /var/run/wireguard: see <see cref="WireGuardMountNamespace"/>).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class WireGuardEndToEndTests
{
    private static void RequirePrerequisites()
    {
        VirtualCluster.RequirePrerequisites();
        Privileged.RequireExecutable("wireguard-go");
        Privileged.RequireExecutable("wg");
        Privileged.RequireExecutable("tcpdump");
        Privileged.RequireExecutable("nsenter");
        Privileged.RequireExecutable("unshare");
    }

    private static string LeaseKey(IPNetwork subnet) => $"{subnet.BaseAddress}-{subnet.PrefixLength}";

    private static async Task<string> PublishedPublicKeyAsync(VirtualCluster cluster, string node)
    {
        string value = (await cluster.EtcdctlAsync("get", "--print-value-only", $"{VirtualCluster.Prefix}/subnets/{LeaseKey(cluster.Subnet(node))}")).Trim();
        using JsonDocument lease = JsonDocument.Parse(value);
        return lease.RootElement.GetProperty("BackendData").GetProperty("PublicKey").GetString()!;
    }

    /// <summary>
    /// Waits until a pod reaches another node's pod, which takes a completed WireGuard handshake. A node's prober
    /// initiates to a new peer at once, and an initiation that arrives before the other node has configured this one
    /// as a peer is dropped; wireguard-go sends the next only after REKEY_TIMEOUT (5 s), longer than one ping.
    /// </summary>
    private static Task WaitForSessionAsync(VirtualCluster cluster, NetworkNamespace from, IPAddress to, string fromNode, string toNode) =>
        VirtualCluster.WaitUntilAsync(
            () => VirtualCluster.PingAsync(from, to),
            $"the pod on {fromNode} to reach {to} on {toNode}\n{cluster.FlanneldLog(fromNode)}\n{cluster.FlanneldLog(toNode)}",
            TimeSpan.FromSeconds(30));

    [Fact]
    public async Task Pods_ping_both_ways_over_wireguard_go_and_the_underlay_carries_only_UDP_to_the_listen_port()
    {
        RequirePrerequisites();
        await using VirtualCluster cluster = await VirtualCluster.StartAsync("wireguard");
        (NetworkNamespace pod1, IPAddress ip1) = await cluster.AddPodAsync("node1", "pod-a");
        (NetworkNamespace pod2, IPAddress ip2) = await cluster.AddPodAsync("node2", "pod-b");

        // Everything between node1 and node2 on node1's underlay link, while the pods ping each other.
        string node1 = cluster.NodeAddresses["node1"], node2 = cluster.NodeAddresses["node2"];
        await using UnderlayCapture capture = await UnderlayCapture.StartAsync(cluster.Bridge, "v-node1", $"ip and host {node1} and host {node2}"); // IP only: ARP between them is expected

        await WaitForSessionAsync(cluster, pod1, ip2, "node1", "node2");
        await WaitForSessionAsync(cluster, pod2, ip1, "node2", "node1");
        Assert.True(await VirtualCluster.PingAsync(pod1, ip2), $"pod on node1 cannot reach {ip2} on node2\n{cluster.FlanneldLog("node1")}");
        Assert.True(await VirtualCluster.PingAsync(pod2, ip1), $"pod on node2 cannot reach {ip1} on node1\n{cluster.FlanneldLog("node2")}");
        string captured = await capture.StopAsync();

        string[] packets = captured.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(packets.Length >= 8, $"expected the pings' packets on the underlay, got:\n{captured}");
        // The agents' underlay probes (ICMP echo between the node addresses themselves, flanneld --probe-interval) are
        // expected; pod traffic must only ever appear as WireGuard UDP.
        string probe = $@"IP ({Regex.Escape(node1)} > {Regex.Escape(node2)}|{Regex.Escape(node2)} > {Regex.Escape(node1)}): ICMP echo (request|reply), ";
        packets = [.. packets.Where(packet => !Regex.IsMatch(packet, probe))];
        Assert.True(packets.Length >= 8, $"expected the pings' WireGuard packets on the underlay, got:\n{captured}");
        Assert.All(packets, packet =>
        {
            // e.g. "IP 198.18.0.11.51820 > 198.18.0.12.51820: UDP, length 128"
            Assert.Matches($@"IP ({Regex.Escape(node1)}|{Regex.Escape(node2)})\.51820 > ({Regex.Escape(node1)}|{Regex.Escape(node2)})\.51820: UDP, length \d+$", packet);
            Assert.DoesNotContain("ICMP", packet, StringComparison.Ordinal);
            Assert.DoesNotContain(ip1.ToString(), packet, StringComparison.Ordinal);
        });

        // Each node: flannel-wg with MTU 1500-80, the /32 address, the route to the network and wg-show peers.
        foreach ((string node, NetworkNamespace ns) in cluster.Nodes)
        {
            IPNetwork subnet = cluster.Subnet(node);
            string link = await ns.RunCheckedAsync("ip", "-d", "link", "show", "flannel-wg");
            Assert.Contains("mtu 1420", link, StringComparison.Ordinal);
            Assert.Contains($"inet {subnet.BaseAddress}/32", await ns.RunCheckedAsync("ip", "-4", "addr", "show", "dev", "flannel-wg"), StringComparison.Ordinal);
            Assert.Contains("10.244.0.0/16 dev flannel-wg", await ns.RunCheckedAsync("ip", "route"), StringComparison.Ordinal);
            Dictionary<string, (string Endpoint, string AllowedIps)> peers = await cluster.WireGuardPeersAsync(node);
            Assert.Equal(2, peers.Count);
            foreach (string other in cluster.Nodes.Keys.Where(n => n != node))
            {
                (string endpoint, string allowed) = peers[await PublishedPublicKeyAsync(cluster, other)];
                Assert.Equal($"{cluster.NodeAddresses[other]}:51820", endpoint);
                Assert.Equal(cluster.Subnet(other).ToString(), allowed);
            }

            Assert.Equal(UnixFileMode.UserRead, File.GetUnixFileMode(cluster.WireGuardKeyFile(node)));
            Assert.Contains("userspace WireGuard (wireguard-go)", cluster.FlanneldLog(node), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_restart_keeps_the_key_a_rotated_key_is_picked_up_and_a_deleted_lease_removes_the_peer()
    {
        RequirePrerequisites();
        await using VirtualCluster cluster = await VirtualCluster.StartAsync("wireguard");
        (NetworkNamespace pod1, IPAddress ip1) = await cluster.AddPodAsync("node1", "pod-a");
        (NetworkNamespace pod2, IPAddress ip2) = await cluster.AddPodAsync("node2", "pod-b");
        string key2 = await PublishedPublicKeyAsync(cluster, "node2");
        await WaitForSessionAsync(cluster, pod1, ip2, "node1", "node2");

        // Restart: the key file is reused, so the published key and node1's peer stay the same.
        DateTime written = File.GetLastWriteTimeUtc(cluster.SubnetFile("node2"));
        await cluster.StopFlanneldAsync("node2");
        Assert.True(await VirtualCluster.PingAsync(pod1, ip2), "traffic stopped while node2's flanneld was down");
        cluster.StartFlanneld("node2");
        await VirtualCluster.WaitUntilAsync(
            () => Task.FromResult(File.GetLastWriteTimeUtc(cluster.SubnetFile("node2")) > written),
            "the restarted flanneld to rewrite subnet.env\n" + cluster.FlanneldLog("node2"));
        Assert.Equal(key2, await PublishedPublicKeyAsync(cluster, "node2"));
        Assert.Contains("wireguard-go already serves flannel-wg", cluster.FlanneldLog("node2"), StringComparison.Ordinal);
        Assert.True(await VirtualCluster.PingAsync(pod1, ip2), "node1 -> node2 failed after the restart");

        // Rotation: node2 restarts with a new key; node1 replaces the peer (old key gone) and traffic flows again.
        await cluster.StopFlanneldAsync("node2");
        File.Delete(cluster.WireGuardKeyFile("node2"));
        cluster.StartFlanneld("node2");
        await VirtualCluster.WaitUntilAsync(async () => await PublishedPublicKeyAsync(cluster, "node2") != key2, "node2 to publish its new key\n" + cluster.FlanneldLog("node2"));
        string rotated = await PublishedPublicKeyAsync(cluster, "node2");
        await VirtualCluster.WaitUntilAsync(
            async () => (await cluster.WireGuardPeersAsync("node1")) is var peers && peers.ContainsKey(rotated) && !peers.ContainsKey(key2),
            "node1 to replace node2's peer\n" + cluster.FlanneldLog("node1"));
        Assert.Equal(cluster.Subnet("node2").ToString(), (await cluster.WireGuardPeersAsync("node1"))[rotated].AllowedIps);
        await VirtualCluster.WaitUntilAsync(() => VirtualCluster.PingAsync(pod1, ip2), "node1 -> node2 over the rotated key");
        Assert.True(await VirtualCluster.PingAsync(pod2, ip1), "node2 -> node1 failed after the key rotation");

        // A deleted lease: node3's flanneld is gone and its lease is deleted; the others drop its peer.
        string key3 = await PublishedPublicKeyAsync(cluster, "node3");
        await cluster.StopFlanneldAsync("node3");
        await cluster.EtcdctlAsync("del", $"{VirtualCluster.Prefix}/subnets/{LeaseKey(cluster.Subnet("node3"))}");
        foreach (string node in new[] { "node1", "node2" })
        {
            await VirtualCluster.WaitUntilAsync(async () => !(await cluster.WireGuardPeersAsync(node)).ContainsKey(key3), $"{node} to remove node3's peer\n{cluster.FlanneldLog(node)}");
        }

        Assert.True(await VirtualCluster.PingAsync(pod1, ip2), "node1 -> node2 failed after node3's lease went");
    }
}
