using System.Net;
using System.Text.Json.Nodes;
using Flannel.Netlink;
using Flannel.Store.Kube.Tests.ApiDouble;
using Flannel.Store.Kube.Tests.Fixtures;
using Flannel.Subnets;
using Microsoft.Extensions.Time.Testing;

namespace Flannel.Store.Kube.Tests;

public class OwnLeaseTests
{
    private const string Mac = "12:c6:65:89:b4:e3";

    [Fact]
    public async Task Acquiring_publishes_flannels_annotations_byte_for_byte_on_the_status_subresource()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync();
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24"));

        Lease lease = await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout());

        Assert.Equal(IPNetwork.Parse("10.244.1.0/24"), lease.Subnet);
        Assert.Null(lease.IPv6Subnet);
        Assert.Equal("10.244.1.0-24", lease.Key);
        RecordedRequest patch = Assert.Single(h.Server.Patches());
        Assert.Equal("/api/v1/nodes/node-a/status", patch.Path);
        Assert.StartsWith("application/strategic-merge-patch+json", patch.ContentType, StringComparison.Ordinal);
        Assert.Equal(
            """{"metadata":{"annotations":{"flannel.alpha.coreos.com/backend-data":"{\"VNI\":1,\"VtepMAC\":\"12:c6:65:89:b4:e3\"}","flannel.alpha.coreos.com/backend-type":"vxlan","flannel.alpha.coreos.com/kube-subnet-manager":"true","flannel.alpha.coreos.com/public-ip":"198.18.0.11"}}}""",
            patch.Body);

        IReadOnlyDictionary<string, string> annotations = h.Server.Annotations("node-a");
        Assert.Equal("""{"VNI":1,"VtepMAC":"12:c6:65:89:b4:e3"}""", annotations["flannel.alpha.coreos.com/backend-data"]);
        Assert.Equal("vxlan", annotations["flannel.alpha.coreos.com/backend-type"]);
        Assert.Equal("198.18.0.11", annotations["flannel.alpha.coreos.com/public-ip"]);
        Assert.Equal("true", annotations["flannel.alpha.coreos.com/kube-subnet-manager"]);
        Assert.Equal("0", annotations["node.alpha.kubernetes.io/ttl"]); // kubelet's annotations survive the merge
        Assert.Equal(KubeNodeState.Ready, h.Store.State);
    }

    [Fact]
    public async Task Annotations_already_in_place_are_not_written_again()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync();
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24", NodeFixtures.FlannelVxlanAnnotations("198.18.0.11", Mac)));

        await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout());

        Assert.Empty(h.Server.Patches());
    }

    [Fact]
    public async Task Only_the_changed_annotation_is_patched()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync();
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24", NodeFixtures.FlannelVxlanAnnotations("198.18.0.99", Mac)));

        await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout());

        Assert.Equal("""{"metadata":{"annotations":{"flannel.alpha.coreos.com/public-ip":"198.18.0.11"}}}""", Assert.Single(h.Server.Patches()).Body);
    }

    [Fact]
    public async Task A_custom_prefix_names_every_annotation()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync(configure: o => o.AnnotationPrefix = "example.com/net");
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24"));

        await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout());

        IReadOnlyDictionary<string, string> annotations = h.Server.Annotations("node-a");
        Assert.Equal("true", annotations["example.com/net-kube-subnet-manager"]);
        Assert.Equal("vxlan", annotations["example.com/net-backend-type"]);
        Assert.DoesNotContain(annotations.Keys, k => k.StartsWith("flannel.alpha.coreos.com/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Public_ip_overwrite_wins_over_the_detected_address()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync();
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24", new Dictionary<string, string>
        {
            ["flannel.alpha.coreos.com/public-ip-overwrite"] = "203.0.113.7",
        }));

        Lease lease = await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout());

        Assert.Equal("203.0.113.7", h.Server.Annotations("node-a")["flannel.alpha.coreos.com/public-ip"]);
        Assert.Equal(IPAddress.Parse("198.18.0.11"), lease.Attributes.PublicIP); // the local endpoint, as flannel returns it
        Assert.Contains(h.Logs.GetSnapshot(), r => r.Message == "Overriding public ip with '203.0.113.7' from node annotation 'flannel.alpha.coreos.com/public-ip-overwrite'");
    }

    [Fact]
    public async Task Dual_stack_publishes_both_families_and_leases_both_cidrs()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync(KubeStoreHarness.DualStackNetConf);
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", ["10.244.1.0/24", "fd00:10:244:1::/64"]));
        LeaseAttributes attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac, "fd00:198:18::11", "4a:5e:01:02:03:04");

        Lease lease = await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = attributes }, KubeStoreHarness.Timeout());

        Assert.Equal(IPNetwork.Parse("10.244.1.0/24"), lease.Subnet);
        Assert.Equal(IPNetwork.Parse("fd00:10:244:1::/64"), lease.IPv6Subnet);
        Assert.Equal(
            """{"metadata":{"annotations":{"flannel.alpha.coreos.com/backend-data":"{\"VNI\":1,\"VtepMAC\":\"12:c6:65:89:b4:e3\"}","flannel.alpha.coreos.com/backend-type":"vxlan","flannel.alpha.coreos.com/backend-v6-data":"{\"VNI\":1,\"VtepMAC\":\"4a:5e:01:02:03:04\"}","flannel.alpha.coreos.com/kube-subnet-manager":"true","flannel.alpha.coreos.com/public-ip":"198.18.0.11","flannel.alpha.coreos.com/public-ipv6":"fd00:198:18::11"}}}""",
            Assert.Single(h.Server.Patches()).Body);
    }

    [Fact]
    public async Task A_wireguard_node_publishes_flannels_annotations_byte_for_byte()
    {
        // What flannel's wireguard backend hands AcquireLease in separate mode, dual stack: the same public key in both
        // families' data, with the v4 device's ListenPort and the v6 device's ListenPortV6. A key with '+' and '/',
        // which Go's encoding/json writes as they are.
        var key = Flannel.Netlink.WireGuard.WireGuardKey.Parse("XXm0dVDHs00T+zNYv/nsQMWFutohshw0dUcYrgIMsmE=");
        // The store publishes whatever attributes the backend hands it; the net-conf's Backend.Type plays no part here.
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync(KubeStoreHarness.DualStackNetConf);
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", ["10.244.1.0/24", "fd00:10:244:1::/64"]));
        LeaseAttributes attributes = new()
        {
            PublicIP = IPAddress.Parse("198.18.0.11"),
            PublicIPv6 = IPAddress.Parse("fd00:198:18::11"),
            BackendType = "wireguard",
            BackendData = new Flannel.Backends.WireGuard.WireGuardLeaseData(key, 51820).ToJson(),
            BackendV6Data = new Flannel.Backends.WireGuard.WireGuardLeaseData(key, 51821).ToJson(),
        };

        await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = attributes }, KubeStoreHarness.Timeout());

        Assert.Equal(
            """{"metadata":{"annotations":{"flannel.alpha.coreos.com/backend-data":"{\"PublicKey\":\"XXm0dVDHs00T+zNYv/nsQMWFutohshw0dUcYrgIMsmE=\",\"Port\":51820}","flannel.alpha.coreos.com/backend-type":"wireguard","flannel.alpha.coreos.com/backend-v6-data":"{\"PublicKey\":\"XXm0dVDHs00T+zNYv/nsQMWFutohshw0dUcYrgIMsmE=\",\"Port\":51821}","flannel.alpha.coreos.com/kube-subnet-manager":"true","flannel.alpha.coreos.com/public-ip":"198.18.0.11","flannel.alpha.coreos.com/public-ipv6":"fd00:198:18::11"}}}""",
            Assert.Single(h.Server.Patches()).Body);
        Assert.Equal(
            """{"PublicIP":"198.18.0.11","PublicIPv6":"fd00:198:18::11","BackendType":"wireguard","BackendData":{"PublicKey":"XXm0dVDHs00T+zNYv/nsQMWFutohshw0dUcYrgIMsmE=","Port":51820},"BackendV6Data":{"PublicKey":"XXm0dVDHs00T+zNYv/nsQMWFutohshw0dUcYrgIMsmE=","Port":51821}}""",
            LeaseJson.Serialize(attributes));
    }

    [Fact]
    public async Task IPv6_only_publishes_only_the_IPv6_annotations()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync(
            """{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"vxlan"}}""");
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "fd00:10:244:1::/64"));
        LeaseAttributes attributes = new()
        {
            PublicIPv6 = IPAddress.Parse("fd00:198:18::11"),
            BackendType = "vxlan",
            BackendV6Data = """{"VNI":1,"VtepMAC":"4a:5e:01:02:03:04"}""",
        };

        Lease lease = await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = attributes }, KubeStoreHarness.Timeout());

        Assert.Null(lease.Subnet);
        Assert.Equal(IPNetwork.Parse("fd00:10:244:1::/64"), lease.IPv6Subnet);
        Assert.Equal(
            """{"metadata":{"annotations":{"flannel.alpha.coreos.com/backend-type":"vxlan","flannel.alpha.coreos.com/backend-v6-data":"{\"VNI\":1,\"VtepMAC\":\"4a:5e:01:02:03:04\"}","flannel.alpha.coreos.com/kube-subnet-manager":"true","flannel.alpha.coreos.com/public-ipv6":"fd00:198:18::11"}}}""",
            Assert.Single(h.Server.Patches()).Body);
    }

    [Fact]
    public async Task Host_gw_publishes_null_backend_data_as_flannel_does()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync("""{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}""");
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24"));

        await h.Store.AcquireLeaseAsync(
            new LeaseRequest { Attributes = new LeaseAttributes { PublicIP = IPAddress.Parse("198.18.0.11"), BackendType = "host-gw" } },
            KubeStoreHarness.Timeout());

        Assert.Equal(
            """{"metadata":{"annotations":{"flannel.alpha.coreos.com/backend-data":"null","flannel.alpha.coreos.com/backend-type":"host-gw","flannel.alpha.coreos.com/kube-subnet-manager":"true","flannel.alpha.coreos.com/public-ip":"198.18.0.11"}}}""",
            Assert.Single(h.Server.Patches()).Body);
    }

    [Fact]
    public async Task A_podCIDR_outside_the_network_fails_with_flannels_text_and_publishes_nothing()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync();
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.42.1.0/24"));

        KubeSubnetStoreException e = await Assert.ThrowsAsync<KubeSubnetStoreException>(async () =>
            await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout()));

        Assert.Equal("subnet \"10.244.0.0/16\" specified in the flannel net config doesn't contain \"10.42.1.0/24\" PodCIDR of the \"node-a\" node", e.Message);
        Assert.Empty(h.Server.Patches());
        Assert.Equal(KubeNodeState.Misconfigured, h.Store.State);
    }

    [Fact]
    public async Task An_IPv6_podCIDR_outside_the_IPv6_network_fails_with_flannels_text()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync(KubeStoreHarness.DualStackNetConf);
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", ["10.244.1.0/24", "fd99::/64"]));

        KubeSubnetStoreException e = await Assert.ThrowsAsync<KubeSubnetStoreException>(async () =>
            await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac, "fd00::11", Mac) }, KubeStoreHarness.Timeout()));

        Assert.Equal("subnet \"fd00:10:244::/56\" specified in the flannel net config doesn't contain \"fd99::/64\" IPv6 PodCIDR of the \"node-a\" node", e.Message);
    }

    [Fact]
    public async Task Three_podCIDRs_fail_with_flannels_text()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync();
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", ["10.244.1.0/24", "fd00::/64", "10.244.2.0/24"]));

        KubeSubnetStoreException e = await Assert.ThrowsAsync<KubeSubnetStoreException>(async () =>
            await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout()));

        Assert.Equal("node \"node-a\" pod cidrs should be IPv4/IPv6 only or dualstack", e.Message);
    }

    [Fact]
    public async Task Without_a_podCIDR_the_store_waits_not_ready_and_takes_the_podCIDR_assigned_later()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync();
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", []));
        List<KubeNodeState> states = [];
        h.Store.StateChanged += (_, e) => { lock (states) { states.Add(e.State); } };

        ValueTask<Lease> acquiring = h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout());
        await KubeStoreHarness.WaitUntilAsync(() => h.Store.State == KubeNodeState.WaitingForPodCidr, "the store reports it waits for a podCIDR");

        Assert.False(acquiring.IsCompleted);
        Assert.Empty(h.Server.Patches());
        Assert.Contains(h.Warnings(), m => m.StartsWith("Node node-a has no podCIDR yet; waiting", StringComparison.Ordinal));

        // kube-controller-manager's node IPAM assigns the CIDR (a spec change through the main resource).
        h.Server.UpdateNode("node-a", n => n["spec"] = new JsonObject { ["podCIDR"] = "10.244.7.0/24", ["podCIDRs"] = new JsonArray("10.244.7.0/24") });
        Lease lease = await acquiring;

        Assert.Equal(IPNetwork.Parse("10.244.7.0/24"), lease.Subnet);
        Assert.Equal(KubeNodeState.Ready, h.Store.State);
        lock (states)
        {
            Assert.Equal([KubeNodeState.WaitingForPodCidr, KubeNodeState.Ready], states);
        }
    }

    [Fact]
    public async Task Before_the_node_registers_the_store_waits_for_it()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync();
        h.Server.AddNode(NodeFixtures.Node("node-other", "198.18.0.12", "10.244.2.0/24"));

        ValueTask<Lease> acquiring = h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout());
        await KubeStoreHarness.WaitUntilAsync(() => h.Store.State == KubeNodeState.WaitingForNode, "the store reports it waits for the node");
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24"));

        Assert.Equal(IPNetwork.Parse("10.244.1.0/24"), (await acquiring).Subnet);
    }

    [Fact]
    public async Task While_waiting_for_a_podCIDR_another_nodes_podCIDR_is_never_taken()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync();
        h.Server.IgnoreFieldSelectors = true;
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", []));
        h.Server.AddNode(NodeFixtures.Node("node-b", "198.18.0.12", "10.244.2.0/24"));

        ValueTask<Lease> acquiring = h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout());
        await KubeStoreHarness.WaitUntilAsync(() => h.Store.State == KubeNodeState.WaitingForPodCidr, "the store reports it waits for a podCIDR");
        h.Server.UpdateNode("node-b", n => n["spec"] = new JsonObject { ["podCIDR"] = "10.244.3.0/24", ["podCIDRs"] = new JsonArray("10.244.3.0/24") });
        h.Server.UpdateNode("node-a", n => n["spec"] = new JsonObject { ["podCIDR"] = "10.244.7.0/24", ["podCIDRs"] = new JsonArray("10.244.7.0/24") });

        Assert.Equal(IPNetwork.Parse("10.244.7.0/24"), (await acquiring).Subnet);
        Assert.Single(h.Warnings(), m => m.Contains("node-b", StringComparison.Ordinal));
        Assert.All(h.Server.Patches(), p => Assert.Equal("/api/v1/nodes/node-a/status", p.Path));
    }

    [Fact]
    public async Task Patch_failures_are_retried_until_the_server_accepts()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync();
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24"));
        h.Server.FailNext("PATCH", "/nodes/node-a/status", count: 2, status: 503);

        await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout());

        Assert.Equal(3, h.Server.Patches().Length);
        Assert.Equal("true", h.Server.Annotations("node-a")["flannel.alpha.coreos.com/kube-subnet-manager"]);
    }

    [Fact]
    public async Task Patches_that_keep_failing_end_with_flannels_timeout_text()
    {
        // Long enough for a retry even when one request takes most of a second on a loaded machine (retries are 50 ms apart).
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync(configure: o => o.PatchRetryTimeout = TimeSpan.FromSeconds(2));
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24"));
        h.Server.FailNext("PATCH", "/nodes/node-a/status", count: 1000, status: 500);

        KubeSubnetStoreException e = await Assert.ThrowsAsync<KubeSubnetStoreException>(async () =>
            await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout()));

        Assert.StartsWith("timeout contacting kube-api, failed to patch node \"node-a\". Error: 500", e.Message, StringComparison.Ordinal);
        Assert.True(h.Server.Patches().Length >= 2);
    }

    [Fact]
    public async Task A_forbidden_patch_names_the_missing_permission()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync(configure: o => o.PatchRetryTimeout = TimeSpan.FromMilliseconds(200));
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24"));
        h.Server.FailNext("PATCH", "/nodes/node-a/status", count: 1000, status: 403);

        KubeSubnetStoreException e = await Assert.ThrowsAsync<KubeSubnetStoreException>(async () =>
            await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout()));

        Assert.Contains("403 Forbidden", e.Message, StringComparison.Ordinal);
        Assert.Contains("the service account needs the 'patch' verb on 'nodes/status'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Hints_restore_the_VtepMAC_and_read_node_public_ip()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync(KubeStoreHarness.DualStackNetConf);
        Dictionary<string, string> annotations = NodeFixtures.FlannelVxlanAnnotations("198.18.0.11", Mac);
        annotations["flannel.alpha.coreos.com/backend-v6-data"] = """{"VNI":1,"VtepMAC":"4a:5e:01:02:03:04"}""";
        annotations["flannel.alpha.coreos.com/public-ipv6"] = "fd00:198:18::11";
        annotations["flannel.alpha.coreos.com/node-public-ip"] = "203.0.113.9";
        annotations["flannel.alpha.coreos.com/node-public-ipv6"] = "2001:db8::9";
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", ["10.244.1.0/24", "fd00:10:244:1::/64"], annotations));

        NodeHints hints = await h.Store.GetNodeHintsAsync(null, KubeStoreHarness.Timeout());

        Assert.Equal(IPAddress.Parse("203.0.113.9"), hints.PublicIP);
        Assert.Equal(IPAddress.Parse("2001:db8::9"), hints.PublicIPv6);
        LeaseAttributes previous = Assert.IsType<LeaseAttributes>(hints.PreviousAttributes);
        Assert.Equal("vxlan", previous.BackendType);
        Assert.Equal("""{"VNI":1,"VtepMAC":"12:c6:65:89:b4:e3"}""", previous.BackendData);
        Assert.Equal("""{"VNI":1,"VtepMAC":"4a:5e:01:02:03:04"}""", previous.BackendV6Data);
        Assert.Equal(IPAddress.Parse("198.18.0.11"), previous.PublicIP);
        Assert.Equal(IPAddress.Parse("fd00:198:18::11"), previous.PublicIPv6);

        // The restored MAC, reused by the backend, leaves the annotations untouched: peers see no change.
        string restoredMac = System.Text.Json.JsonDocument.Parse(previous.BackendData!).RootElement.GetProperty("VtepMAC").GetString()!;
        Assert.Equal(MacAddress.Parse(Mac), MacAddress.Parse(restoredMac));
        await h.Store.AcquireLeaseAsync(
            new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", restoredMac, "fd00:198:18::11", "4a:5e:01:02:03:04") },
            KubeStoreHarness.Timeout());
        Assert.Empty(h.Server.Patches());
    }

    [Fact]
    public async Task Unreadable_hint_annotations_are_ignored_with_a_warning_naming_node_and_field()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync();
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24", new Dictionary<string, string>
        {
            ["flannel.alpha.coreos.com/node-public-ip"] = "not-an-ip",
            ["flannel.alpha.coreos.com/backend-data"] = "{\"VNI\":1,",
            ["flannel.alpha.coreos.com/backend-type"] = "vxlan",
        }));

        NodeHints hints = await h.Store.GetNodeHintsAsync(null, KubeStoreHarness.Timeout());

        Assert.Null(hints.PublicIP);
        Assert.Null(hints.PreviousAttributes!.BackendData);
        Assert.Contains(h.Warnings(), m => m.Contains("flannel.alpha.coreos.com/node-public-ip", StringComparison.Ordinal) && m.Contains("node-a", StringComparison.Ordinal));
        Assert.Contains(h.Warnings(), m => m.Contains("flannel.alpha.coreos.com/backend-data", StringComparison.Ordinal) && m.Contains("node-a", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_fresh_node_gives_no_previous_attributes()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync();
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24"));

        NodeHints hints = await h.Store.GetNodeHintsAsync(null, KubeStoreHarness.Timeout());

        Assert.Null(hints.PreviousAttributes);
        Assert.Null(hints.PublicIP);
    }

    [Fact]
    public async Task Keeping_the_lease_sets_NetworkUnavailable_False_with_flannels_exact_body()
    {
        FakeTimeProvider time = new(new DateTimeOffset(2026, 11, 27, 8, 40, 12, 345, TimeSpan.Zero));
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync(time: time);
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24"));
        Lease lease = await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout());
        Assert.Equal(time.GetUtcNow() + TimeSpan.FromHours(24), lease.Expiration);

        await using StreamReader<Lease> keeping = new(ct => h.Store.KeepLeaseAsync(lease, ct));
        _ = keeping.Begin();
        await KubeStoreHarness.WaitUntilAsync(() => h.Server.Patches().Length == 2, "the condition patch arrives");

        RecordedRequest condition = h.Server.Patches()[1];
        Assert.Equal("/api/v1/nodes/node-a/status", condition.Path);
        Assert.StartsWith("application/strategic-merge-patch+json", condition.ContentType, StringComparison.Ordinal);
        Assert.Equal(
            """{"status":{"conditions":[{"type":"NetworkUnavailable","status":"False","lastHeartbeatTime":"2026-11-27T08:40:12Z","lastTransitionTime":"2026-11-27T08:40:12Z","reason":"FlannelIsUp","message":"Flannel is running on this node"}]}}""",
            condition.Body);

        JsonArray conditions = h.Server.GetNode("node-a")["status"]!["conditions"]!.AsArray();
        Assert.Equal(["MemoryPressure", "DiskPressure", "PIDPressure", "Ready", "NetworkUnavailable"], conditions.Select(c => c!["type"]!.GetValue<string>()));
        Assert.Equal("True", conditions.Single(c => c!["type"]!.GetValue<string>() == "Ready")!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task With_SetNodeNetworkUnavailable_off_no_condition_is_written()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync(configure: o => o.SetNodeNetworkUnavailable = false);
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24", NodeFixtures.FlannelVxlanAnnotations("198.18.0.11", Mac)));
        Lease lease = await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout());

        await using StreamReader<Lease> keeping = new(ct => h.Store.KeepLeaseAsync(lease, ct));
        _ = keeping.Begin();
        await KubeStoreHarness.WaitUntilAsync(() => h.Server.OpenWatches == 1, "the store watches its node");

        // Prove the watch is live (a change is acted on) before asserting that nothing was patched for the condition.
        h.Server.UpdateNode("node-a", n => n["metadata"]!["annotations"]!.AsObject().Remove("flannel.alpha.coreos.com/kube-subnet-manager"));
        await KubeStoreHarness.WaitUntilAsync(() => h.Server.Patches().Length == 1, "the annotation is restored");

        Assert.DoesNotContain(h.Server.Patches(), p => p.Body.Contains("NetworkUnavailable", StringComparison.Ordinal));
        Assert.Equal("true", h.Server.Annotations("node-a")["flannel.alpha.coreos.com/kube-subnet-manager"]);
    }

    [Fact]
    public async Task Keeping_the_lease_hands_out_a_new_lease_when_the_podCIDR_changes()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync();
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24"));
        Lease lease = await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout());
        await using StreamReader<Lease> keeping = new(ct => h.Store.KeepLeaseAsync(lease, ct));
        _ = keeping.Begin();
        await KubeStoreHarness.WaitUntilAsync(() => h.Server.OpenWatches == 1, "the store watches its node");

        h.Server.UpdateNode("node-a", n => n["spec"] = new JsonObject { ["podCIDR"] = "10.244.9.0/24", ["podCIDRs"] = new JsonArray("10.244.9.0/24") });
        Lease next = await keeping.NextAsync();

        Assert.Equal(IPNetwork.Parse("10.244.9.0/24"), next.Subnet);
        Assert.Equal(lease.Attributes, next.Attributes);
    }

    [Fact]
    public async Task Another_nodes_events_on_the_own_node_watch_are_ignored_and_logged_once()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync();
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24"));
        Lease lease = await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout());

        // From here on the server sends every node's events on the watch of node-a, as a faulty proxy would.
        h.Server.IgnoreFieldSelectors = true;
        await using StreamReader<Lease> keeping = new(ct => h.Store.KeepLeaseAsync(lease, ct));
        _ = keeping.Begin();
        await KubeStoreHarness.WaitUntilAsync(() => h.Server.Patches().Length == 2, "the condition patch arrives");

        h.Server.AddNode(NodeFixtures.Node("node-b", "198.18.0.12", "10.244.2.0/24"));
        h.Server.UpdateNode("node-b", n => n["spec"] = new JsonObject { ["podCIDR"] = "10.244.3.0/24", ["podCIDRs"] = new JsonArray("10.244.3.0/24") });
        h.Server.DeleteNode("node-b");

        // A real change of node-a comes after node-b's events on the same stream: the next lease is node-a's.
        h.Server.UpdateNode("node-a", n => n["spec"] = new JsonObject { ["podCIDR"] = "10.244.9.0/24", ["podCIDRs"] = new JsonArray("10.244.9.0/24") });
        Lease next = await keeping.NextAsync();

        Assert.Equal(IPNetwork.Parse("10.244.9.0/24"), next.Subnet);
        Assert.Equal(KubeNodeState.Ready, h.Store.State);
        Assert.Single(h.Warnings(), m => m.Contains("node-b", StringComparison.Ordinal));
        Assert.DoesNotContain(h.Server.Patches(), p => p.Path.Contains("node-b", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Keeping_the_lease_survives_a_deleted_and_recreated_node()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync();
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24"));
        Lease lease = await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout());
        await using StreamReader<Lease> keeping = new(ct => h.Store.KeepLeaseAsync(lease, ct));
        _ = keeping.Begin();
        await KubeStoreHarness.WaitUntilAsync(() => h.Server.Patches().Length == 2, "the condition patch arrives");

        h.Server.DeleteNode("node-a");
        await KubeStoreHarness.WaitUntilAsync(() => h.Store.State == KubeNodeState.WaitingForNode, "the store notices the deletion");
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24"));
        await KubeStoreHarness.WaitUntilAsync(
            () => h.Server.Patches().Length == 4 && h.Store.State == KubeNodeState.Ready, "annotations and condition are written again");

        Assert.Equal("true", h.Server.Annotations("node-a")["flannel.alpha.coreos.com/kube-subnet-manager"]);
        Assert.Contains(h.Server.GetNode("node-a")["status"]!["conditions"]!.AsArray(), c => c!["type"]!.GetValue<string>() == "NetworkUnavailable");
        Assert.Equal(KubeNodeState.Ready, h.Store.State);
    }

    [Fact]
    public async Task Revoking_removes_only_the_kube_subnet_manager_annotation()
    {
        await using KubeStoreHarness h = await KubeStoreHarness.StartAsync();
        h.Server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24", NodeFixtures.FlannelVxlanAnnotations("198.18.0.11", Mac)));
        Lease lease = await h.Store.AcquireLeaseAsync(new LeaseRequest { Attributes = KubeStoreHarness.VxlanAttributes("198.18.0.11", Mac) }, KubeStoreHarness.Timeout());

        await h.Store.RevokeLeaseAsync(lease, KubeStoreHarness.Timeout());

        Assert.Equal("""{"metadata":{"annotations":{"flannel.alpha.coreos.com/kube-subnet-manager":null}}}""", Assert.Single(h.Server.Patches()).Body);
        IReadOnlyDictionary<string, string> annotations = h.Server.Annotations("node-a");
        Assert.False(annotations.ContainsKey("flannel.alpha.coreos.com/kube-subnet-manager"));
        Assert.Equal("""{"VNI":1,"VtepMAC":"12:c6:65:89:b4:e3"}""", annotations["flannel.alpha.coreos.com/backend-data"]);
    }
}
