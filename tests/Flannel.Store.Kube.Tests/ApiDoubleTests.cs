extern alias official;

using System.Net;
using System.Text.Json.Nodes;
using Flannel.Store.Kube.Tests.ApiDouble;
using Flannel.Store.Kube.Tests.Fixtures;
using official::k8s;
using official::k8s.Autorest;
using official::k8s.Models;

namespace Flannel.Store.Kube.Tests;

/// <summary>
/// The double's own semantics, checked through KubernetesClient: if these drift from kube-apiserver's, the store tests
/// prove nothing.
/// </summary>
public sealed class ApiDoubleTests : IAsyncLifetime
{
    private KubeApiServerDouble _server = null!;
    private Kubernetes _client = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await KubeApiServerDouble.StartAsync();
        _client = new Kubernetes(new KubernetesClientConfiguration { Host = _server.Url });
        _server.AddNode(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24"));
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task List_returns_the_kubectl_shaped_nodes_and_a_resourceVersion()
    {
        V1NodeList list = await _client.CoreV1.ListNodeAsync(cancellationToken: KubeStoreHarness.Timeout());

        V1Node node = Assert.Single(list.Items);
        Assert.Equal("node-a", node.Metadata.Name);
        Assert.Equal("10.244.1.0/24", node.Spec.PodCIDR);
        Assert.Equal(["10.244.1.0/24"], node.Spec.PodCIDRs);
        Assert.Equal("198.18.0.11", node.Status.Addresses.Single(a => a.Type == "InternalIP").Address);
        Assert.Equal(4, node.Status.Conditions.Count);
        Assert.Equal(_server.ResourceVersion.ToString(), list.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task Strategic_merge_merges_conditions_by_type_and_annotations_by_key()
    {
        string body = """{"metadata":{"annotations":{"x.example.com/a":"1"}},"status":{"conditions":[{"type":"NetworkUnavailable","status":"False","reason":"FlannelIsUp"},{"type":"Ready","status":"False"}]}}""";
        V1Node patched = await _client.CoreV1.PatchNodeStatusAsync(new V1Patch(body, V1Patch.PatchType.StrategicMergePatch), "node-a", cancellationToken: KubeStoreHarness.Timeout());

        Assert.Equal(5, patched.Status.Conditions.Count);
        Assert.Equal("False", patched.Status.Conditions.Single(c => c.Type == "Ready").Status);
        Assert.Equal("KubeletReady", patched.Status.Conditions.Single(c => c.Type == "Ready").Reason);
        Assert.Equal("FlannelIsUp", patched.Status.Conditions.Single(c => c.Type == "NetworkUnavailable").Reason);
        Assert.Equal("1", patched.Metadata.Annotations["x.example.com/a"]);
        Assert.Equal("0", patched.Metadata.Annotations["node.alpha.kubernetes.io/ttl"]);
    }

    [Fact]
    public async Task Merge_patch_replaces_lists_and_null_deletes_keys()
    {
        string body = """{"metadata":{"annotations":{"node.alpha.kubernetes.io/ttl":null}},"status":{"conditions":[{"type":"Ready","status":"True"}]}}""";
        V1Node patched = await _client.CoreV1.PatchNodeStatusAsync(new V1Patch(body, V1Patch.PatchType.MergePatch), "node-a", cancellationToken: KubeStoreHarness.Timeout());

        Assert.Single(patched.Status.Conditions);
        Assert.False(patched.Metadata.Annotations.ContainsKey("node.alpha.kubernetes.io/ttl"));
    }

    [Fact]
    public async Task Strategic_merge_delete_directive_removes_one_condition()
    {
        string body = """{"status":{"conditions":[{"type":"PIDPressure","$patch":"delete"}]}}""";
        V1Node patched = await _client.CoreV1.PatchNodeStatusAsync(new V1Patch(body, V1Patch.PatchType.StrategicMergePatch), "node-a", cancellationToken: KubeStoreHarness.Timeout());

        Assert.Equal(["MemoryPressure", "DiskPressure", "Ready"], patched.Status.Conditions.Select(c => c.Type));
    }

    [Fact]
    public async Task The_status_subresource_ignores_spec_and_the_main_resource_ignores_status()
    {
        string body = """{"spec":{"podCIDR":"10.99.0.0/24"},"status":{"conditions":[{"type":"Ready","status":"Unknown"}]}}""";
        V1Node viaStatus = await _client.CoreV1.PatchNodeStatusAsync(new V1Patch(body, V1Patch.PatchType.StrategicMergePatch), "node-a", cancellationToken: KubeStoreHarness.Timeout());
        Assert.Equal("10.244.1.0/24", viaStatus.Spec.PodCIDR);
        Assert.Equal("Unknown", viaStatus.Status.Conditions.Single(c => c.Type == "Ready").Status);

        string back = """{"spec":{"unschedulable":true},"status":{"conditions":[{"type":"Ready","status":"True"}]}}""";
        V1Node viaMain = await _client.CoreV1.PatchNodeAsync(new V1Patch(back, V1Patch.PatchType.StrategicMergePatch), "node-a", cancellationToken: KubeStoreHarness.Timeout());
        Assert.True(viaMain.Spec.Unschedulable);
        Assert.Equal("Unknown", viaMain.Status.Conditions.Single(c => c.Type == "Ready").Status);
    }

    [Fact]
    public async Task A_patch_that_changes_nothing_keeps_the_resourceVersion()
    {
        long before = _server.ResourceVersion;
        string body = """{"metadata":{"annotations":{"node.alpha.kubernetes.io/ttl":"0"}}}""";
        V1Node patched = await _client.CoreV1.PatchNodeStatusAsync(new V1Patch(body, V1Patch.PatchType.StrategicMergePatch), "node-a", cancellationToken: KubeStoreHarness.Timeout());

        Assert.Equal(before, _server.ResourceVersion);
        Assert.Equal(before.ToString(), patched.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task Json_patch_applies_operations_in_order()
    {
        string body = """[{"op":"add","path":"/metadata/annotations/x.example.com~1b","value":"2"},{"op":"test","path":"/spec/podCIDR","value":"10.244.1.0/24"},{"op":"remove","path":"/metadata/annotations/node.alpha.kubernetes.io~1ttl"}]""";
        V1Node patched = await _client.CoreV1.PatchNodeAsync(new V1Patch(body, V1Patch.PatchType.JsonPatch), "node-a", cancellationToken: KubeStoreHarness.Timeout());

        Assert.Equal("2", patched.Metadata.Annotations["x.example.com/b"]);
        Assert.False(patched.Metadata.Annotations.ContainsKey("node.alpha.kubernetes.io/ttl"));
    }

    [Fact]
    public async Task Unsupported_media_types_get_415_and_bad_values_get_400()
    {
        using HttpClient http = new();
        using StringContent text = new("{}", System.Text.Encoding.UTF8, "text/plain");
        HttpResponseMessage response = await http.PatchAsync($"{_server.Url}/api/v1/nodes/node-a/status", text, KubeStoreHarness.Timeout());
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        JsonNode status = JsonNode.Parse(await response.Content.ReadAsStringAsync(KubeStoreHarness.Timeout()))!;
        Assert.Equal("UnsupportedMediaType", status["reason"]!.GetValue<string>());

        string notAString = """{"metadata":{"annotations":{"x.example.com/n":1}}}""";
        HttpOperationException bad = await Assert.ThrowsAsync<HttpOperationException>(() =>
            _client.CoreV1.PatchNodeStatusAsync(new V1Patch(notAString, V1Patch.PatchType.MergePatch), "node-a", cancellationToken: KubeStoreHarness.Timeout()));
        Assert.Equal(HttpStatusCode.BadRequest, bad.Response.StatusCode);

        HttpOperationException missing = await Assert.ThrowsAsync<HttpOperationException>(() =>
            _client.CoreV1.ReadNodeAsync("node-zzz", cancellationToken: KubeStoreHarness.Timeout()));
        Assert.Equal(HttpStatusCode.NotFound, missing.Response.StatusCode);
    }

    [Fact]
    public async Task A_resourceVersion_precondition_that_no_longer_holds_gets_409()
    {
        string body = """{"metadata":{"resourceVersion":"1","annotations":{"x.example.com/a":"1"}}}""";
        HttpOperationException conflict = await Assert.ThrowsAsync<HttpOperationException>(() =>
            _client.CoreV1.PatchNodeAsync(new V1Patch(body, V1Patch.PatchType.MergePatch), "node-a", cancellationToken: KubeStoreHarness.Timeout()));

        Assert.Equal(HttpStatusCode.Conflict, conflict.Response.StatusCode);
    }

    [Fact]
    public async Task Watch_replays_from_the_resourceVersion_then_streams_live_events_and_bookmarks()
    {
        V1NodeList list = await _client.CoreV1.ListNodeAsync(cancellationToken: KubeStoreHarness.Timeout());
        _server.AddNode(NodeFixtures.Node("node-b", "198.18.0.12", "10.244.2.0/24"));

        List<(WatchEventType, string?)> seen = [];
        using CancellationTokenSource cts = CancellationTokenSource.CreateLinkedTokenSource(KubeStoreHarness.Timeout());
        await foreach ((WatchEventType type, V1Node node) in _client.CoreV1.WatchListNodeAsync(
            resourceVersion: list.Metadata.ResourceVersion, allowWatchBookmarks: true, cancellationToken: cts.Token))
        {
            seen.Add((type, type == WatchEventType.Bookmark ? node.Metadata.ResourceVersion : node.Metadata.Name));
            if (seen.Count == 1)
            {
                _server.DeleteNode("node-b");
            }
            else if (seen.Count == 2)
            {
                _server.SendBookmarks();
            }
            else
            {
                break;
            }
        }

        Assert.Equal(
            [(WatchEventType.Added, "node-b"), (WatchEventType.Deleted, "node-b"), (WatchEventType.Bookmark, _server.ResourceVersion.ToString())],
            seen);
    }

    [Fact]
    public async Task A_watch_from_a_compacted_resourceVersion_gets_an_ERROR_410_and_ends()
    {
        V1NodeList list = await _client.CoreV1.ListNodeAsync(cancellationToken: KubeStoreHarness.Timeout());
        _server.CompactHistory();

        List<Exception> errors = [];
        int events = 0;
        await foreach (var _ in _client.CoreV1.WatchListNodeAsync(
            resourceVersion: list.Metadata.ResourceVersion, onError: errors.Add, cancellationToken: KubeStoreHarness.Timeout()))
        {
            events++;
        }

        Assert.Equal(0, events);
        KubernetesException expired = Assert.IsType<KubernetesException>(Assert.Single(errors));
        Assert.Equal(410, expired.Status.Code);
        Assert.Equal("Expired", expired.Status.Reason);
    }

    [Fact]
    public async Task A_list_with_limit_pages_through_one_snapshot_with_continue_tokens_and_remainingItemCount()
    {
        _server.AddNode(NodeFixtures.Node("node-b", "198.18.0.12", "10.244.2.0/24"));
        _server.AddNode(NodeFixtures.Node("node-c", "198.18.0.13", "10.244.3.0/24"));

        V1NodeList first = await _client.CoreV1.ListNodeAsync(limit: 2, cancellationToken: KubeStoreHarness.Timeout());
        _server.AddNode(NodeFixtures.Node("node-d", "198.18.0.14", "10.244.4.0/24")); // after the snapshot: not in this list
        _server.DeleteNode("node-c");                                                // deleted after the snapshot: still in it
        V1NodeList second = await _client.CoreV1.ListNodeAsync(continueParameter: first.Metadata.ContinueProperty, limit: 2, cancellationToken: KubeStoreHarness.Timeout());

        Assert.Equal(["node-a", "node-b"], first.Items.Select(n => n.Metadata.Name));
        Assert.Equal(1, first.Metadata.RemainingItemCount);
        Assert.False(string.IsNullOrEmpty(first.Metadata.ContinueProperty));
        Assert.Equal(["node-c"], second.Items.Select(n => n.Metadata.Name));
        Assert.Null(second.Metadata.ContinueProperty);
        Assert.Equal(first.Metadata.ResourceVersion, second.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task A_list_at_resourceVersion_0_comes_from_the_watch_cache_which_ignores_limit()
    {
        _server.AddNode(NodeFixtures.Node("node-b", "198.18.0.12", "10.244.2.0/24"));

        V1NodeList cached = await _client.CoreV1.ListNodeAsync(resourceVersion: "0", limit: 1, cancellationToken: KubeStoreHarness.Timeout());
        _server.WatchCacheDisabled = true;
        V1NodeList fromEtcd = await _client.CoreV1.ListNodeAsync(resourceVersion: "0", limit: 1, cancellationToken: KubeStoreHarness.Timeout());

        Assert.Equal(2, cached.Items.Count);
        Assert.Null(cached.Metadata.ContinueProperty);
        Assert.Single(fromEtcd.Items);
        Assert.NotNull(fromEtcd.Metadata.ContinueProperty);
    }

    [Fact]
    public async Task A_continue_token_into_a_compacted_snapshot_gets_410_Expired()
    {
        _server.AddNode(NodeFixtures.Node("node-b", "198.18.0.12", "10.244.2.0/24"));
        V1NodeList first = await _client.CoreV1.ListNodeAsync(limit: 1, cancellationToken: KubeStoreHarness.Timeout());
        _server.CompactHistory();

        HttpOperationException expired = await Assert.ThrowsAsync<HttpOperationException>(() =>
            _client.CoreV1.ListNodeAsync(continueParameter: first.Metadata.ContinueProperty, limit: 1, cancellationToken: KubeStoreHarness.Timeout()));

        Assert.Equal(HttpStatusCode.Gone, expired.Response.StatusCode);
        Assert.Contains("\"reason\":\"Expired\"", expired.Response.Content, StringComparison.Ordinal);
        Assert.Contains("The provided continue parameter is too old", expired.Response.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_list_not_older_than_a_future_resourceVersion_times_out_with_504_and_a_past_one_gets_the_current_state()
    {
        long now = _server.ResourceVersion;

        HttpOperationException tooLarge = await Assert.ThrowsAsync<HttpOperationException>(() =>
            _client.CoreV1.ListNodeAsync(resourceVersion: (now + 10).ToString(System.Globalization.CultureInfo.InvariantCulture), cancellationToken: KubeStoreHarness.Timeout()));
        V1NodeList past = await _client.CoreV1.ListNodeAsync(resourceVersion: "1", cancellationToken: KubeStoreHarness.Timeout());

        Assert.Equal(HttpStatusCode.GatewayTimeout, tooLarge.Response.StatusCode);
        Assert.Contains($"Too large resource version: {now + 10}, current: {now}", tooLarge.Response.Content, StringComparison.Ordinal);
        Assert.Equal(now.ToString(System.Globalization.CultureInfo.InvariantCulture), past.Metadata.ResourceVersion);
        Assert.Single(past.Items);
    }

    [Fact]
    public async Task Pods_are_served_by_namespace_and_name()
    {
        _server.AddPod(NodeFixtures.FlannelPod("kube-flannel-ds-x7k2p", "kube-flannel", "node-a"));

        V1Pod pod = await _client.CoreV1.ReadNamespacedPodAsync("kube-flannel-ds-x7k2p", "kube-flannel", cancellationToken: KubeStoreHarness.Timeout());

        Assert.Equal("node-a", pod.Spec.NodeName);
    }
}
