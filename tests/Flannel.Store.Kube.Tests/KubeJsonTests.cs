using System.Text;
using System.Text.Json;
using Flannel.Store.Kube.Internal;
using Flannel.Store.Kube.Tests.Fixtures;

namespace Flannel.Store.Kube.Tests;

/// <summary>The store's source-generated reader of nodes: only what flannel reads is kept, from any stream.</summary>
public class KubeJsonTests
{
    private static readonly KubeJson Json = new(AnnotationNames.Default);

    private static string List(int nodes)
    {
        var items = Enumerable.Range(1, nodes).Select(i =>
        {
            Dictionary<string, string> annotations = NodeFixtures.FlannelVxlanAnnotations($"198.18.1.{i % 250}", "0a:58:0a:f4:02:01");
            annotations["kubectl.kubernetes.io/last-applied-configuration"] = new string('x', 2000);
            annotations["flannel.alpha.coreos.com/some-future-annotation"] = "kept out";
            return NodeFixtures.Node($"node-{i}", $"198.18.1.{i % 250}", $"10.{i / 256}.{i % 256}.0/24", annotations);
        });
        return $$"""{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"4711","continue":"abc","remainingItemCount":9},"items":[{{string.Join(',', items)}}]}""";
    }

    [Fact]
    public async Task A_list_much_larger_than_the_read_buffer_arrives_in_small_chunks_and_keeps_only_flannels_fields()
    {
        byte[] body = Encoding.UTF8.GetBytes(List(300)); // about 1.5 MB
        await using var stream = new TrickleStream(body, chunk: 1000);

        NodeListDto list = (await JsonSerializer.DeserializeAsync(stream, Json.NodeList, TestContext.Current.CancellationToken))!;

        Assert.Equal(300, list.Items!.Count);
        Assert.Equal(("4711", "abc", 9L), (list.Metadata.ResourceVersion, list.Metadata.Continue, list.Metadata.RemainingItemCount));
        KubeNode last = list.Items[^1];
        Assert.Equal(("node-300", "10.1.44.0/24"), (last.Name, last.Spec.PodCidr));
        Assert.Equal(["10.1.44.0/24"], last.Spec.PodCidrs);
        Assert.Equal(
            ["flannel.alpha.coreos.com/backend-data", "flannel.alpha.coreos.com/backend-type", "flannel.alpha.coreos.com/kube-subnet-manager", "flannel.alpha.coreos.com/public-ip"],
            last.Metadata.Annotations.Names.Order(StringComparer.Ordinal));

        // The names are AnnotationNames' own strings, not a copy per node.
        string key = last.Metadata.Annotations.Names.Single(k => k.EndsWith("/backend-type", StringComparison.Ordinal));
        Assert.Same(AnnotationNames.Default.BackendType, key);
    }

    [Fact]
    public void Only_the_flannel_annotations_are_kept_whatever_their_order_and_the_foreign_ones()
    {
        const string Base = "flannel.alpha.coreos.com/";
        static KubeNode Read(params (string Name, string Value)[] annotations)
        {
            var map = new System.Text.Json.Nodes.JsonObject();
            foreach ((string name, string value) in annotations)
            {
                map[name] = value;
            }

            string json = new System.Text.Json.Nodes.JsonObject
            {
                ["metadata"] = new System.Text.Json.Nodes.JsonObject { ["name"] = "n", ["annotations"] = map },
                ["spec"] = new System.Text.Json.Nodes.JsonObject { ["podCIDR"] = "10.244.1.0/24" },
            }.ToJsonString();
            return JsonSerializer.Deserialize(json, Json.Node)!;
        }

        KubeNode node = Read((Base + "backend-type", "vxlan"), (Base + "public-ip", "198.18.0.2"), ("x", "1"));
        KubeNode reordered = Read(("y", "2"), (Base + "public-ip", "198.18.0.2"), (Base + "backend-type", "vxlan"));
        KubeNode moved = Read((Base + "backend-type", "vxlan"), (Base + "public-ip", "198.18.0.3"));
        KubeNode fewer = Read((Base + "backend-type", "vxlan"));

        Assert.Equal(node.Metadata.Annotations.Names, reordered.Metadata.Annotations.Names);
        Assert.Equal("198.18.0.2", reordered.Annotation(AnnotationNames.Default.PublicIP));
        Assert.Equal("vxlan", reordered.Annotation(AnnotationNames.Default.BackendType));
        Assert.Equal("198.18.0.3", moved.Annotation(AnnotationNames.Default.PublicIP));
        Assert.Null(fewer.Annotation(AnnotationNames.Default.PublicIP));
        Assert.Equal(2, node.Metadata.Annotations.Names.Count());
    }

    [Fact]
    public void Escaped_annotation_names_are_recognised_and_a_null_map_is_empty()
    {
        string node = """{"metadata":{"name":"n","annotations":{"flannel.alpha.coreos.com\/backend-type":"vxlan","x":{"nested":[1,2]}}},"spec":{}}""";
        string bare = """{"metadata":{"name":"n","annotations":null},"spec":{"podCIDR":"10.244.1.0/24"}}""";

        KubeNode read = JsonSerializer.Deserialize(node, Json.Node)!;
        KubeNode empty = JsonSerializer.Deserialize(bare, Json.Node)!;

        Assert.Equal("vxlan", read.Annotation(AnnotationNames.Default.BackendType));
        Assert.Single(read.Metadata.Annotations.Names);
        Assert.Empty(empty.Metadata.Annotations.Names);
        Assert.True(empty.HasPodCidr);
    }

    /// <summary>A stream that hands out at most <c>chunk</c> bytes per read, like a slow HTTP response.</summary>
    private sealed class TrickleStream(byte[] data, int chunk) : MemoryStream(data)
    {
        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, chunk));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, chunk)], cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            base.ReadAsync(buffer, offset, Math.Min(count, chunk), cancellationToken);
    }
}
