using System.Text.Json.Serialization;

namespace Flannel.Store.Kube.Internal;

/// <summary>
/// The part of a core/v1 Node that flannel reads: name, resourceVersion, the flannel annotations, and the pod CIDRs.
/// Deserialised straight from the API's JSON (<see cref="KubeJson"/>); every other field of the node (labels,
/// conditions, images, addresses, managed fields, foreign annotations) is skipped by the reader and never kept, so a
/// 5 KB node costs a few hundred bytes here.
/// </summary>
internal class KubeNode
{
    [JsonPropertyName("metadata")]
    public NodeMetadata Metadata { get; init; } = new();

    [JsonPropertyName("spec")]
    public NodeSpec Spec { get; init; } = new();

    [JsonIgnore]
    public string Name => Metadata.Name;

    [JsonIgnore]
    public string ResourceVersion => Metadata.ResourceVersion;

    /// <summary>
    /// The node's creation order for the agent's overlap rule (<see cref="Flannel.Subnets.Lease.CreateRevision"/>):
    /// <c>metadata.creationTimestamp</c> in Unix seconds, set by the API server when the node is created and never
    /// changed; 0 when absent or unreadable. The API exposes no creation revision, and nodes created within the same
    /// second tie: the agent then keeps the lease it saw first.
    /// </summary>
    [JsonIgnore]
    public long CreationOrder =>
        DateTimeOffset.TryParse(
            Metadata.CreationTimestamp,
            System.Globalization.CultureInfo.InvariantCulture,
            System.Globalization.DateTimeStyles.AssumeUniversal,
            out DateTimeOffset created)
        && created.ToUnixTimeSeconds() > 0
            ? created.ToUnixTimeSeconds()
            : 0;

    [JsonIgnore]
    public bool HasPodCidr => !string.IsNullOrEmpty(Spec.PodCidr) || Spec.PodCidrs is { Count: > 0 };

    /// <summary>A flannel annotation's value, or null when the node does not carry it.</summary>
    public string? Annotation(string name) => Metadata.Annotations[name];
}

internal sealed class NodeMetadata
{
    [JsonPropertyName("name")]
    public string Name { get; init; } = "";

    [JsonPropertyName("resourceVersion")]
    public string ResourceVersion { get; init; } = "";

    [JsonPropertyName("creationTimestamp")]
    public string? CreationTimestamp { get; init; }

    [JsonPropertyName("annotations")]
    public FlannelAnnotations Annotations { get; init; } = FlannelAnnotations.Empty;
}

internal sealed class NodeSpec
{
    [JsonPropertyName("podCIDR")]
    public string? PodCidr { get; init; }

    [JsonPropertyName("podCIDRs")]
    public IReadOnlyList<string>? PodCidrs { get; init; }
}

/// <summary>
/// The annotations of a node that flannel reads; the others are dropped while reading
/// (<see cref="FlannelAnnotationsConverter"/>), whatever their size.
/// </summary>
internal sealed class FlannelAnnotations
{
    // Every node read (5,000 per list, one per watch event) makes one of these, so it is a slot per name flannel reads
    // (null: the node has no such annotation), indexed like the converter's shared name array: 136 bytes a node, where
    // a dictionary of the same four to six entries took 260-350.
    private readonly string[] _names;
    private readonly string?[] _values;

    /// <param name="names">The names flannel reads, shared by every node a converter reads.</param>
    /// <param name="values">One value per name, null where the node does not carry it.</param>
    public FlannelAnnotations(string[] names, string?[] values)
    {
        if (names.Length != values.Length)
        {
            throw new ArgumentException($"{values.Length} values for {names.Length} names.", nameof(values));
        }

        _names = names;
        _values = values;
    }

    public static FlannelAnnotations Empty { get; } = new([], []);

    /// <summary>The names the node carries, in the converter's order.</summary>
    public IEnumerable<string> Names => _names.Where((_, i) => _values[i] is not null);

    /// <summary>The value of <paramref name="name"/>, or null when the node does not carry it.</summary>
    public string? this[string name]
    {
        get
        {
            int index = Array.IndexOf(_names, name);
            return index < 0 ? null : _values[index];
        }
    }
}

/// <summary>A watch event's object: a Node, or for an ERROR event a Status (kind, code, reason, message).</summary>
internal sealed class WatchObject : KubeNode
{
    [JsonPropertyName("kind")]
    public string? Kind { get; init; }

    [JsonPropertyName("code")]
    public int Code { get; init; }

    [JsonPropertyName("reason")]
    public string? Reason { get; init; }

    [JsonPropertyName("message")]
    public string? Message { get; init; }
}

/// <summary>One line of a watch stream: <c>{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{…}}</c>.</summary>
internal sealed class WatchEventDto
{
    [JsonPropertyName("type")]
    public string Type { get; init; } = "";

    [JsonPropertyName("object")]
    public WatchObject? Object { get; init; }
}

/// <summary>A NodeList: its list metadata and the items, read one by one from the response stream.</summary>
internal sealed class NodeListDto
{
    [JsonPropertyName("metadata")]
    public ListMetadata Metadata { get; init; } = new();

    [JsonPropertyName("items")]
    public List<KubeNode>? Items { get; init; }
}

internal sealed class ListMetadata
{
    [JsonPropertyName("resourceVersion")]
    public string ResourceVersion { get; init; } = "";

    [JsonPropertyName("continue")]
    public string? Continue { get; init; }

    [JsonPropertyName("remainingItemCount")]
    public long? RemainingItemCount { get; init; }
}

/// <summary>An API error body (<c>kind: Status</c>).</summary>
internal sealed class StatusDto
{
    [JsonPropertyName("kind")]
    public string? Kind { get; init; }

    [JsonPropertyName("code")]
    public int Code { get; init; }

    [JsonPropertyName("reason")]
    public string? Reason { get; init; }

    [JsonPropertyName("message")]
    public string? Message { get; init; }
}

/// <summary>The one field of a Pod flannel reads: <c>spec.nodeName</c>.</summary>
internal sealed class PodDto
{
    [JsonPropertyName("spec")]
    public PodSpecDto Spec { get; init; } = new();
}

internal sealed class PodSpecDto
{
    [JsonPropertyName("nodeName")]
    public string? NodeName { get; init; }
}
