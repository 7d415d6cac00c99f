using System.Net;
using System.Text.Json.Nodes;
using Flannel.Store.Kube.Tests.ApiDouble;
using Flannel.Store.Kube.Tests.Fixtures;
using Flannel.Subnets;

namespace Flannel.Store.Kube.Tests;

public class PeerWatchTests
{
    private static Dictionary<string, string> Vxlan(string ip, string mac) => NodeFixtures.FlannelVxlanAnnotations(ip, mac);

    private static void SetAnnotation(JsonObject node, string key, string? value)
    {
        JsonObject annotations = node["metadata"]!["annotations"]!.AsObject();
        if (value is null)
        {
            annotations.Remove(key);
        }
        else
        {
            annotations[key] = value;
        }
    }

    private static async Task<KubeStoreHarness> StartWithPeersAsync(string netConf = KubeStoreHarness.IPv4NetConf)
    {
        KubeStoreHarness h = await KubeStoreHarness.StartAsync(netConf);
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24", Vxlan("198.18.0.11", "12:c6:65:89:b4:e3")));
        h.Server.AddNode(NodeFixtures.Node("node-b", "198.18.0.12", "10.244.2.0/24", Vxlan("198.18.0.12", "0a:58:0a:f4:02:01")));
        h.Server.AddNode(NodeFixtures.Node("node-c", "198.18.0.13", "10.244.3.0/24")); // no flannel here
        return h;
    }

    [Fact]
    public async Task The_first_item_is_a_snapshot_of_managed_peers_without_our_own_node()
    {
        await using KubeStoreHarness h = await StartWithPeersAsync();
        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);

        LeaseWatchResult first = await watch.NextAsync();

        Assert.True(first.IsSnapshot);
        Lease peer = Assert.Single(first.Snapshot!);
        Assert.Equal(IPNetwork.Parse("10.244.2.0/24"), peer.Subnet);
        Assert.Equal(IPAddress.Parse("198.18.0.12"), peer.Attributes.PublicIP);
        Assert.Equal("vxlan", peer.Attributes.BackendType);
        Assert.Equal("""{"VNI":1,"VtepMAC":"0a:58:0a:f4:02:01"}""", peer.Attributes.BackendData);
        Assert.Null(peer.IPv6Subnet);
    }

    [Fact]
    public async Task Each_peer_lease_carries_its_nodes_creation_order_which_updates_keep()
    {
        // The agent keeps the earlier of two overlapping leases by CreateRevision. The API has no creation revision;
        // metadata.creationTimestamp (set by the server at creation, never changed) gives the order. node-b is
        // listed first (lists are in name order) but was created a day after node-y. (We are node-a.)
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync(KubeStoreHarness.IPv4NetConf);
        h.Server.AddNode(CreatedAt(NodeFixtures.Node("node-b", "198.18.0.11", "10.244.2.0/25", Vxlan("198.18.0.11", "0a:58:0a:f4:02:99")), "2026-11-28T10:00:00Z"));
        h.Server.AddNode(CreatedAt(NodeFixtures.Node("node-y", "198.18.0.12", "10.244.2.0/24", Vxlan("198.18.0.12", "0a:58:0a:f4:02:01")), "2026-11-27T10:00:00Z"));
        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);

        LeaseWatchResult first = await watch.NextAsync();
        Lease later = first.Snapshot!.Single(l => l.Subnet == IPNetwork.Parse("10.244.2.0/25"));
        Lease earlier = first.Snapshot!.Single(l => l.Subnet == IPNetwork.Parse("10.244.2.0/24"));
        Assert.Equal(DateTimeOffset.Parse("2026-11-27T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeSeconds(), earlier.CreateRevision);
        Assert.Equal(earlier.CreateRevision + 86_400, later.CreateRevision);

        // A changed annotation is a new lease value, with the same creation order.
        h.Server.UpdateNode("node-y", n => SetAnnotation(n, "flannel.alpha.coreos.com/backend-data", """{"VNI":1,"VtepMAC":"0a:58:0a:f4:02:02"}"""));
        LeaseEvent changed = Assert.Single((await watch.NextAsync()).Events);
        Assert.Equal(earlier.Subnet, changed.Lease.Subnet);
        Assert.Equal(earlier.CreateRevision, changed.Lease.CreateRevision);
    }

    private static string CreatedAt(string nodeJson, string creationTimestamp)
    {
        JsonObject node = JsonNode.Parse(nodeJson)!.AsObject();
        node["metadata"]!["creationTimestamp"] = creationTimestamp;
        return node.ToJsonString();
    }

    [Fact]
    public async Task A_failing_list_is_retried_with_backoff()
    {
        await using KubeStoreHarness h = await StartWithPeersAsync();
        h.Server.FailNext("GET", "/api/v1/nodes", count: 2, status: 500);
        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);

        LeaseWatchResult first = await watch.NextAsync();

        Assert.True(first.IsSnapshot);
        Assert.Single(first.Snapshot!);
        Assert.Equal(3, ListRequests(h));
        Assert.Equal(2, h.Warnings().Count(m => m.StartsWith("Listing all nodes failed, retrying in", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Peers_added_updated_and_removed_become_lease_events()
    {
        await using KubeStoreHarness h = await StartWithPeersAsync();
        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);
        await watch.NextAsync();

        h.Server.AddNode(NodeFixtures.Node("node-d", "198.18.0.14", "10.244.4.0/24", Vxlan("198.18.0.14", "0a:58:0a:f4:04:01")));
        LeaseEvent added = Assert.Single((await watch.NextAsync()).Events);
        Assert.Equal(LeaseEventType.Added, added.Type);
        Assert.Equal(IPNetwork.Parse("10.244.4.0/24"), added.Lease.Subnet);

        // kubelet heartbeats and unrelated annotations change nothing lease-relevant: no event for them. The next
        // event must be the MAC change that follows.
        h.Server.UpdateNode("node-b", n => n["status"]!["conditions"]![3]!["lastHeartbeatTime"] = "2026-11-27T08:11:02Z");
        h.Server.UpdateNode("node-b", n => SetAnnotation(n, "node.alpha.kubernetes.io/ttl", "30"));
        h.Server.UpdateNode("node-b", n => SetAnnotation(n, "flannel.alpha.coreos.com/backend-data", """{"VNI":1,"VtepMAC":"0a:58:0a:f4:02:99"}"""));
        LeaseEvent updated = Assert.Single((await watch.NextAsync()).Events);
        Assert.Equal(LeaseEventType.Added, updated.Type);
        Assert.Equal("""{"VNI":1,"VtepMAC":"0a:58:0a:f4:02:99"}""", updated.Lease.Attributes.BackendData);

        h.Server.DeleteNode("node-d");
        LeaseEvent removed = Assert.Single((await watch.NextAsync()).Events);
        Assert.Equal(LeaseEventType.Removed, removed.Type);
        Assert.Equal(IPNetwork.Parse("10.244.4.0/24"), removed.Lease.Subnet);
        Assert.Equal("vxlan", removed.Lease.Attributes.BackendType); // the cached lease, full attributes
    }

    [Fact]
    public async Task A_node_that_starts_running_flannel_is_added_and_one_that_stops_is_removed()
    {
        await using KubeStoreHarness h = await StartWithPeersAsync();
        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);
        await watch.NextAsync();

        h.Server.UpdateNode("node-c", n =>
        {
            foreach ((string key, string value) in Vxlan("198.18.0.13", "0a:58:0a:f4:03:01"))
            {
                SetAnnotation(n, key, value);
            }
        });
        Assert.Equal(LeaseEventType.Added, Assert.Single((await watch.NextAsync()).Events).Type);

        h.Server.UpdateNode("node-b", n => SetAnnotation(n, "flannel.alpha.coreos.com/kube-subnet-manager", null));
        LeaseEvent removed = Assert.Single((await watch.NextAsync()).Events);
        Assert.Equal(LeaseEventType.Removed, removed.Type);
        Assert.Equal(IPNetwork.Parse("10.244.2.0/24"), removed.Lease.Subnet);
    }

    [Fact]
    public async Task Our_own_node_never_appears_in_events()
    {
        await using KubeStoreHarness h = await StartWithPeersAsync();
        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);
        await watch.NextAsync();

        h.Server.UpdateNode("node-a", n => SetAnnotation(n, "flannel.alpha.coreos.com/public-ip", "198.18.0.111"));
        h.Server.DeleteNode("node-a");
        h.Server.UpdateNode("node-b", n => SetAnnotation(n, "flannel.alpha.coreos.com/public-ip", "198.18.0.112"));

        LeaseEvent next = Assert.Single((await watch.NextAsync()).Events);
        Assert.Equal(IPAddress.Parse("198.18.0.112"), next.Lease.Attributes.PublicIP);
    }

    [Fact]
    public async Task A_peer_whose_podCIDR_moves_is_removed_from_the_old_subnet_and_added_on_the_new()
    {
        await using KubeStoreHarness h = await StartWithPeersAsync();
        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);
        await watch.NextAsync();

        h.Server.UpdateNode("node-b", n => n["spec"] = new JsonObject { ["podCIDR"] = "10.244.20.0/24", ["podCIDRs"] = new JsonArray("10.244.20.0/24") });
        IReadOnlyList<LeaseEvent> events = (await watch.NextAsync()).Events;

        Assert.Equal(2, events.Count);
        Assert.Equal((LeaseEventType.Removed, IPNetwork.Parse("10.244.2.0/24")), (events[0].Type, events[0].Lease.Subnet!.Value));
        Assert.Equal((LeaseEventType.Added, IPNetwork.Parse("10.244.20.0/24")), (events[1].Type, events[1].Lease.Subnet!.Value));
    }

    [Fact]
    public async Task In_dual_stack_a_change_of_only_the_IPv4_annotations_is_reported()
    {
        // flannel's update filter suppresses this event (both `changed = false` branches run); Flannel.NET reports it.
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync(KubeStoreHarness.DualStackNetConf);
        Dictionary<string, string> annotations = Vxlan("198.18.0.12", "0a:58:0a:f4:02:01");
        annotations["flannel.alpha.coreos.com/backend-v6-data"] = """{"VNI":1,"VtepMAC":"0a:58:0a:f4:02:66"}""";
        annotations["flannel.alpha.coreos.com/public-ipv6"] = "fd00:198:18::12";
        h.Server.AddNode(NodeFixtures.Node("node-b", "198.18.0.12", ["10.244.2.0/24", "fd00:10:244:2::/64"], annotations));
        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);
        Lease initial = Assert.Single((await watch.NextAsync()).Snapshot!);
        Assert.Equal(IPNetwork.Parse("fd00:10:244:2::/64"), initial.IPv6Subnet);
        Assert.Equal(IPAddress.Parse("fd00:198:18::12"), initial.Attributes.PublicIPv6);

        h.Server.UpdateNode("node-b", n => SetAnnotation(n, "flannel.alpha.coreos.com/public-ip", "198.18.0.99"));
        LeaseEvent v4Only = Assert.Single((await watch.NextAsync()).Events);
        Assert.Equal(LeaseEventType.Added, v4Only.Type);
        Assert.Equal(IPAddress.Parse("198.18.0.99"), v4Only.Lease.Attributes.PublicIP);
        Assert.Equal(IPAddress.Parse("fd00:198:18::12"), v4Only.Lease.Attributes.PublicIPv6);
    }

    [Fact]
    public async Task IPv6_only_peers_need_no_IPv4_annotations_and_host_gw_peers_have_no_backend_data()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync(
            """{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"host-gw"}}""");
        h.Server.AddNode(NodeFixtures.Node("node-b", "198.18.0.12", "fd00:10:244:2::/64", new Dictionary<string, string>
        {
            ["flannel.alpha.coreos.com/backend-type"] = "host-gw",
            ["flannel.alpha.coreos.com/backend-v6-data"] = "null",
            ["flannel.alpha.coreos.com/kube-subnet-manager"] = "true",
            ["flannel.alpha.coreos.com/public-ipv6"] = "fd00:198:18::12",
        }));
        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);

        Lease peer = Assert.Single((await watch.NextAsync()).Snapshot!);

        Assert.Null(peer.Subnet);
        Assert.Equal(IPNetwork.Parse("fd00:10:244:2::/64"), peer.IPv6Subnet);
        Assert.Equal(IPAddress.Parse("fd00:198:18::12"), peer.Attributes.PublicIPv6);
        Assert.Equal(IPAddress.Any, peer.Attributes.PublicIP);
        Assert.Null(peer.Attributes.BackendV6Data);
        Assert.Equal("host-gw", peer.Attributes.BackendType);
    }

    [Fact]
    public async Task Two_Flannel_NET_nodes_find_each_other_while_keeping_their_leases()
    {
        await using KubeStoreHarness a = await KubeStoreHarness.StartAsync(nodeName: "node-a");
        await using KubeStoreHarness b = await KubeStoreHarness.StartAsync(nodeName: "node-b", server: a.Server);
        a.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24"));
        a.Server.AddNode(NodeFixtures.Node("node-b", "198.18.0.12", "10.244.2.0/24"));

        Lease leaseA = await a.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", "0a:00:00:00:00:0a") }, KubeStoreHarness.Timeout());
        await using StreamReader<Lease> keepA = new(ct => a.Store.KeepLeaseAsync(leaseA, ct));
        _ = keepA.Begin();
        await using StreamReader<LeaseWatchResult> watchA = new(a.Store.WatchLeasesAsync);
        Assert.Empty((await watchA.NextAsync()).Snapshot!); // node-b has not published yet

        Lease leaseB = await b.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.12", "0a:00:00:00:00:0b") }, KubeStoreHarness.Timeout());
        await using StreamReader<Lease> keepB = new(ct => b.Store.KeepLeaseAsync(leaseB, ct));
        _ = keepB.Begin();
        await using StreamReader<LeaseWatchResult> watchB = new(b.Store.WatchLeasesAsync);

        LeaseEvent seenByA = Assert.Single((await watchA.NextAsync()).Events);
        Assert.Equal((LeaseEventType.Added, leaseB.Subnet, leaseB.Attributes), (seenByA.Type, seenByA.Lease.Subnet, seenByA.Lease.Attributes));
        Lease seenByB = Assert.Single((await watchB.NextAsync()).Snapshot!);
        Assert.Equal((leaseA.Subnet, leaseA.Attributes), (seenByB.Subnet, seenByB.Attributes));

        // Setting NetworkUnavailable on node-b is a status change, not a lease change: node-a hears nothing of it.
        await KubeStoreHarness.WaitUntilAsync(
            () => a.Server.GetNode("node-b")["status"]!["conditions"]!.AsArray().Any(c => c!["type"]!.GetValue<string>() == "NetworkUnavailable"),
            "node-b's condition is set");
        a.Server.UpdateNode("node-b", n => SetAnnotation(n, "flannel.alpha.coreos.com/public-ip-overwrite", "203.0.113.12"));
        LeaseEvent overwritten = Assert.Single((await watchA.NextAsync()).Events);
        Assert.Equal(IPAddress.Parse("203.0.113.12"), overwritten.Lease.Attributes.PublicIP); // node-b's store applied the overwrite
    }

    [Fact]
    public async Task Malformed_annotations_skip_that_node_with_a_warning_and_the_others_are_served()
    {
        await using KubeStoreHarness h = await StartWithPeersAsync();
        Dictionary<string, string> badIP = Vxlan("198.18.0.15", "0a:58:0a:f4:05:01");
        badIP["flannel.alpha.coreos.com/public-ip"] = "198.18.0";
        h.Server.AddNode(NodeFixtures.Node("node-e", "198.18.0.15", "10.244.5.0/24", badIP));
        Dictionary<string, string> badData = Vxlan("198.18.0.16", "0a:58:0a:f4:06:01");
        badData["flannel.alpha.coreos.com/backend-data"] = """{"VNI":1,"VtepMAC":""";
        h.Server.AddNode(NodeFixtures.Node("node-f", "198.18.0.16", "10.244.6.0/24", badData));
        h.Server.AddNode(NodeFixtures.Node("node-g", "198.18.0.17", "not-a-cidr", Vxlan("198.18.0.17", "0a:58:0a:f4:07:01")));

        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);
        LeaseWatchResult snapshot = await watch.NextAsync();

        Assert.Equal([IPNetwork.Parse("10.244.2.0/24")], snapshot.Snapshot!.Select(l => l.Subnet!.Value));
        string[] warnings = [.. h.Warnings()];
        Assert.Contains(warnings, m => m.Contains("node-e", StringComparison.Ordinal) && m.Contains("flannel.alpha.coreos.com/public-ip \"198.18.0\" is not an IPv4 address", StringComparison.Ordinal));
        Assert.Contains(warnings, m => m.Contains("node-f", StringComparison.Ordinal) && m.Contains("flannel.alpha.coreos.com/backend-data", StringComparison.Ordinal));
        Assert.Contains(warnings, m => m.Contains("node-g", StringComparison.Ordinal) && m.Contains("spec.podCIDR", StringComparison.Ordinal));

        // Fixing the annotation brings the node in.
        h.Server.UpdateNode("node-e", n => SetAnnotation(n, "flannel.alpha.coreos.com/public-ip", "198.18.0.15"));
        LeaseEvent fixedNode = Assert.Single((await watch.NextAsync()).Events);
        Assert.Equal(IPNetwork.Parse("10.244.5.0/24"), fixedNode.Lease.Subnet);
    }

    [Fact]
    public async Task A_peer_that_goes_bad_keeps_its_last_good_lease()
    {
        await using KubeStoreHarness h = await StartWithPeersAsync();
        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);
        await watch.NextAsync();

        h.Server.UpdateNode("node-b", n => SetAnnotation(n, "flannel.alpha.coreos.com/public-ip", "garbage"));
        h.Server.ExpireWatches();
        LeaseWatchResult relisted = await watch.NextAsync();

        Assert.True(relisted.IsSnapshot);
        Assert.Equal(IPAddress.Parse("198.18.0.12"), Assert.Single(relisted.Snapshot!).Attributes.PublicIP);
        Assert.Single(h.Warnings(), m => m.Contains("garbage", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_ERROR_410_on_an_open_watch_is_followed_by_a_new_list_and_snapshot()
    {
        await using KubeStoreHarness h = await StartWithPeersAsync();
        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);
        await watch.NextAsync();
        _ = watch.Begin();
        await KubeStoreHarness.WaitUntilAsync(() => h.Server.OpenWatches == 1, "the store watches the nodes");

        h.Server.ExpireWatches();
        LeaseWatchResult relisted = await watch.NextAsync();

        Assert.True(relisted.IsSnapshot);
        Assert.Equal([IPNetwork.Parse("10.244.2.0/24")], relisted.Snapshot!.Select(l => l.Subnet!.Value));
        Assert.Equal(2, ListRequests(h));
        Assert.Contains(h.Logs.GetSnapshot(), r => r.Message.StartsWith("Watch of all nodes expired at resourceVersion", StringComparison.Ordinal));

        // The new watch is live.
        h.Server.AddNode(NodeFixtures.Node("node-h", "198.18.0.18", "10.244.8.0/24", Vxlan("198.18.0.18", "0a:58:0a:f4:08:01")));
        Assert.Equal(IPNetwork.Parse("10.244.8.0/24"), Assert.Single((await watch.NextAsync()).Events).Lease.Subnet);
    }

    [Fact]
    public async Task Changes_lost_to_compaction_arrive_in_the_snapshot_of_the_re_list()
    {
        await using KubeStoreHarness h = await StartWithPeersAsync();
        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);
        await watch.NextAsync();

        // The store has not started watching yet; by the time it does, its list's resourceVersion is compacted away.
        h.Server.AddNode(NodeFixtures.Node("node-d", "198.18.0.14", "10.244.4.0/24", Vxlan("198.18.0.14", "0a:58:0a:f4:04:01")));
        h.Server.DeleteNode("node-b");
        h.Server.CompactHistory();
        LeaseWatchResult relisted = await watch.NextAsync();

        Assert.True(relisted.IsSnapshot);
        Assert.Equal([IPNetwork.Parse("10.244.4.0/24")], relisted.Snapshot!.Select(l => l.Subnet!.Value));
        Assert.Equal(2, ListRequests(h));
    }

    [Fact]
    public async Task The_first_list_asks_the_watch_cache_like_a_reflector_and_the_watch_continues_from_its_resourceVersion()
    {
        await using KubeStoreHarness h = await StartWithPeersAsync();
        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);
        await watch.NextAsync();
        _ = watch.Begin();
        await KubeStoreHarness.WaitUntilAsync(() => h.Server.OpenWatches == 1, "the store watches the nodes");

        RecordedRequest list = Assert.Single(h.Server.Requests, r => r.Path == "/api/v1/nodes" && !r.Query.Contains("watch=true", StringComparison.Ordinal));
        Assert.Equal("?resourceVersion=0&limit=500", list.Query);
        RecordedRequest watchRequest = h.Server.Requests.Single(r => r.Query.Contains("watch=true", StringComparison.Ordinal));
        Assert.Equal(h.Server.ResourceVersion.ToString(System.Globalization.CultureInfo.InvariantCulture), ResourceVersionOf(watchRequest.Query));
    }

    [Fact]
    public async Task Without_a_watch_cache_the_list_is_paged_with_continue_tokens_into_one_snapshot()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync(configure: o => o.ListPageSize = 2);
        h.Server.WatchCacheDisabled = true;
        for (int i = 2; i <= 6; i++)
        {
            h.Server.AddNode(NodeFixtures.Node($"node-{(char)('a' + i - 1)}", $"198.18.0.1{i}", $"10.244.{i}.0/24", Vxlan($"198.18.0.1{i}", $"0a:58:0a:f4:0{i}:01")));
        }

        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);
        LeaseWatchResult snapshot = await watch.NextAsync();

        Assert.Equal(5, snapshot.Snapshot!.Count);
        string[] lists = [.. h.Server.Requests.Where(r => r.Path == "/api/v1/nodes" && !r.Query.Contains("watch=true", StringComparison.Ordinal)).Select(r => r.Query)];
        Assert.Equal(3, lists.Length);
        Assert.Equal("?resourceVersion=0&limit=2", lists[0]);
        Assert.All(lists.Skip(1), q => Assert.Matches("^\\?limit=2&continue=[A-Za-z0-9_-]+$", q));
    }

    [Fact]
    public async Task A_continue_token_that_expires_mid_list_is_answered_by_one_full_list()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync(configure: o => o.ListPageSize = 2);
        h.Server.WatchCacheDisabled = true;
        for (int i = 2; i <= 6; i++)
        {
            h.Server.AddNode(NodeFixtures.Node($"node-{(char)('a' + i - 1)}", $"198.18.0.1{i}", $"10.244.{i}.0/24", Vxlan($"198.18.0.1{i}", $"0a:58:0a:f4:0{i}:01")));
        }

        h.Server.CompactAfterListPages = 1;
        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);
        LeaseWatchResult snapshot = await watch.NextAsync();

        Assert.Equal(5, snapshot.Snapshot!.Count);
        string[] lists = [.. h.Server.Requests.Where(r => r.Path == "/api/v1/nodes" && !r.Query.Contains("watch=true", StringComparison.Ordinal)).Select(r => r.Query)];
        Assert.Equal(3, lists.Length);
        Assert.StartsWith("?limit=2&continue=", lists[1], StringComparison.Ordinal); // answered 410 Expired
        Assert.Equal("?resourceVersion=0", lists[2]);
        Assert.Contains(h.Logs.GetSnapshot(), r => r.Message == "The continue token of a paginated node list expired after 2 nodes; listing all nodes at once instead");
    }

    [Fact]
    public async Task After_a_410_the_re_list_asks_for_state_not_older_than_the_last_one_seen_without_limit()
    {
        await using KubeStoreHarness h = await StartWithPeersAsync();
        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);
        await watch.NextAsync();
        _ = watch.Begin();
        await KubeStoreHarness.WaitUntilAsync(() => h.Server.OpenWatches == 1, "the store watches the nodes");
        string seen = h.Server.ResourceVersion.ToString(System.Globalization.CultureInfo.InvariantCulture);

        h.Server.ExpireWatches();
        Assert.True((await watch.NextAsync()).IsSnapshot);

        string relist = h.Server.Requests.Where(r => r.Path == "/api/v1/nodes" && !r.Query.Contains("watch=true", StringComparison.Ordinal)).Last().Query;
        Assert.Equal($"?resourceVersion={seen}", relist);
    }

    [Fact]
    public async Task Updates_that_change_nothing_flannel_reads_are_dropped_and_a_later_real_change_still_arrives()
    {
        await using KubeStoreHarness h = await StartWithPeersAsync();
        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);
        await watch.NextAsync();

        for (int i = 0; i < 50; i++)
        {
            h.Server.UpdateNode("node-b", n => n["status"]!["conditions"]![3]!["lastHeartbeatTime"] = $"2026-11-27T08:{i:00}:02Z");
            h.Server.UpdateNode("node-b", n => n["metadata"]!["labels"]!["heartbeat"] = i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            h.Server.UpdateNode("node-b", n => SetAnnotation(n, "kubectl.kubernetes.io/last-applied-configuration", new string('x', 4096) + i));
        }

        h.Server.UpdateNode("node-b", n => SetAnnotation(n, "flannel.alpha.coreos.com/public-ip", "198.18.0.122"));
        LeaseWatchResult next = await watch.NextAsync();

        Assert.Equal(IPAddress.Parse("198.18.0.122"), Assert.Single(next.Events).Lease.Attributes.PublicIP);
    }

    private static int ListRequests(KubeStoreHarness h) =>
        h.Server.Requests.Count(r => r.Method == "GET" && r.Path == "/api/v1/nodes" && !r.Query.Contains("watch=true", StringComparison.Ordinal));

    [Fact]
    public async Task A_dropped_connection_is_resumed_from_the_last_resourceVersion_without_a_new_list()
    {
        await using KubeStoreHarness h = await StartWithPeersAsync();
        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);
        await watch.NextAsync();
        _ = watch.Begin();
        await KubeStoreHarness.WaitUntilAsync(() => h.Server.OpenWatches == 1, "the store watches the nodes");

        h.Server.DropWatchConnections();
        h.Server.UpdateNode("node-b", n => SetAnnotation(n, "flannel.alpha.coreos.com/public-ip", "198.18.0.120"));
        LeaseWatchResult next = await watch.NextAsync();

        Assert.False(next.IsSnapshot);
        Assert.Equal(IPAddress.Parse("198.18.0.120"), Assert.Single(next.Events).Lease.Attributes.PublicIP);
        string[] watches = [.. h.Server.Requests.Where(r => r.Query.Contains("watch=true", StringComparison.Ordinal)).Select(r => r.Query)];
        Assert.True(watches.Length >= 2);
        Assert.Equal(ResourceVersionOf(watches[0]), ResourceVersionOf(watches[1]));
        Assert.Single(h.Server.Requests, r => r.Method == "GET" && r.Path == "/api/v1/nodes" && !r.Query.Contains("watch=true", StringComparison.Ordinal));
        Assert.Contains(h.Warnings(), m => m.StartsWith("Watch of all nodes failed, reconnecting", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Bookmarks_move_the_resume_point_forward()
    {
        await using KubeStoreHarness h = await StartWithPeersAsync();
        await using StreamReader<LeaseWatchResult> watch = new(h.Store.WatchLeasesAsync);
        await watch.NextAsync();
        _ = watch.Begin();
        await KubeStoreHarness.WaitUntilAsync(() => h.Server.OpenWatches == 1, "the store watches the nodes");
        Assert.Contains("allowWatchBookmarks=true", h.Server.Requests.Last(r => r.Query.Contains("watch=true", StringComparison.Ordinal)).Query, StringComparison.Ordinal);

        h.Server.AddPod(NodeFixtures.FlannelPod("kube-flannel-ds-abcde", "kube-flannel", "node-b")); // moves the global resourceVersion
        string bookmark = h.Server.ResourceVersion.ToString();
        h.Server.SendBookmarks();
        h.Server.EndWatches(); // the bookmark line goes out before the end of the stream
        await KubeStoreHarness.WaitUntilAsync(
            () => h.Server.Requests.Count(r => r.Query.Contains("watch=true", StringComparison.Ordinal)) >= 2, "the store watches again");

        string second = h.Server.Requests.Where(r => r.Query.Contains("watch=true", StringComparison.Ordinal)).ElementAt(1).Query;
        Assert.Equal(bookmark, ResourceVersionOf(second));
        Assert.Contains(h.Logs.GetSnapshot(), r => r.Message == $"Watch of all nodes ended by the server; resuming from resourceVersion {bookmark}");

        // Resumed, not re-listed, and live.
        Assert.Equal(1, ListRequests(h));
        h.Server.UpdateNode("node-b", n => SetAnnotation(n, "flannel.alpha.coreos.com/public-ip", "198.18.0.121"));
        Assert.Equal(IPAddress.Parse("198.18.0.121"), Assert.Single((await watch.NextAsync()).Events).Lease.Attributes.PublicIP);
    }

    private static string ResourceVersionOf(string query) =>
        query.TrimStart('?').Split('&').Single(p => p.StartsWith("resourceVersion=", StringComparison.Ordinal))["resourceVersion=".Length..];
}
