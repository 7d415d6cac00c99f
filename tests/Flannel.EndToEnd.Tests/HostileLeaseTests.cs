using System.Net;
using System.Text.Json;
using Flannel.Testing.Namespaces;

namespace Flannel.EndToEnd.Tests;

/// <summary>
/// Leases a misbehaving writer puts into etcd, against real flanneld processes: a lease that overlaps another node's
/// subnet must not change how traffic reaches it.
/// </summary>
public sealed class HostileLeaseTests
{
    private static string LeaseKey(IPNetwork subnet) => $"{VirtualCluster.Prefix}/subnets/{subnet.BaseAddress}-{subnet.PrefixLength}";

    private static string LeaseValue(string publicIP, string mac) =>
        $$$"""{"PublicIP":"{{{publicIP}}}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"{{{mac}}}"}}""";

    [Fact]
    public async Task A_lease_overlapping_another_nodes_subnet_never_changes_how_traffic_reaches_that_node()
    {
        VirtualCluster.RequirePrerequisites();
        await using VirtualCluster cluster = await VirtualCluster.StartAsync("vxlan");
        (NetworkNamespace pod1, IPAddress ip1) = await cluster.AddPodAsync("node1", "pod-a");
        (NetworkNamespace pod2, IPAddress ip2) = await cluster.AddPodAsync("node2", "pod-b");
        IPNetwork a = cluster.Subnet("node1");
        NetworkNamespace b = cluster.Nodes["node2"];
        string neighbourBefore = await NeighbourAsync(b, a.BaseAddress);

        // The report's hijack: 10.244.A.0-25 inside node1's /24, from an address that is nobody's.
        var hijack = new IPNetwork(a.BaseAddress, 25);
        await cluster.EtcdctlAsync("put", LeaseKey(hijack), LeaseValue("198.18.0.99", "0e:2a:de:ad:be:ef"));

        // A legitimate lease after it: once node2 has programmed this one, it has seen the hijack too.
        var later = IPNetwork.Parse("10.244.251.0/24");
        await cluster.EtcdctlAsync("put", LeaseKey(later), LeaseValue("198.18.0.98", "0e:2a:00:00:00:98"));
        await VirtualCluster.WaitUntilAsync(() => cluster.HasRouteAsync("node2", later), "node2 to program the lease after the hijack\n" + cluster.FlanneldLog("node2"));

        Assert.Equal(neighbourBefore, await NeighbourAsync(b, a.BaseAddress));
        Assert.False(await cluster.HasRouteAsync("node2", hijack), $"node2 programmed the hijacking lease {hijack}");
        Assert.True(await VirtualCluster.PingAsync(pod2, ip1), $"pod on node2 cannot reach {ip1} on node1 after the hijack");
        Assert.True(await VirtualCluster.PingAsync(pod1, ip2), $"pod on node1 cannot reach {ip2} on node2 after the hijack");
        Assert.Contains(cluster.FlanneldLog("node2").Split('\n'), l => l.Contains($"{hijack.BaseAddress}-25", StringComparison.Ordinal) && l.Contains("overlaps", StringComparison.Ordinal));
    }

    /// <summary>The link-layer address of <paramref name="address"/>'s permanent neighbour on flannel.1.</summary>
    private static async Task<string> NeighbourAsync(NetworkNamespace node, IPAddress address)
    {
        JsonElement neighbours = await node.IpJsonAsync("ip", "neigh", "show", "dev", "flannel.1", address.ToString());
        Assert.Equal(1, neighbours.GetArrayLength());
        return neighbours[0].GetProperty("lladdr").GetString()!;
    }
}
