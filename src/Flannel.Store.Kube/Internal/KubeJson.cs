using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Flannel.Store.Kube.Internal;

/// <summary>System.Text.Json metadata for the API objects flannel reads, generated at compile time (no reflection, native AOT safe).</summary>
[JsonSourceGenerationOptions(GenerationMode = JsonSourceGenerationMode.Metadata)]
[JsonSerializable(typeof(NodeListDto))]
[JsonSerializable(typeof(WatchEventDto))]
[JsonSerializable(typeof(KubeNode))]
[JsonSerializable(typeof(StatusDto))]
[JsonSerializable(typeof(PodDto))]
internal sealed partial class KubeJsonContext : JsonSerializerContext
{
}

/// <summary>
/// The type information one store uses: the generated metadata plus a <see cref="FlannelAnnotationsConverter"/> for
/// its annotation names, so that only flannel's annotations are kept.
/// </summary>
internal sealed class KubeJson
{
    public KubeJson(AnnotationNames names)
    {
        var options = new JsonSerializerOptions
        {
            TypeInfoResolver = KubeJsonContext.Default,
            Converters = { new FlannelAnnotationsConverter(names) },
        };
        NodeList = (JsonTypeInfo<NodeListDto>)options.GetTypeInfo(typeof(NodeListDto));
        WatchEvent = (JsonTypeInfo<WatchEventDto>)options.GetTypeInfo(typeof(WatchEventDto));
        Node = (JsonTypeInfo<KubeNode>)options.GetTypeInfo(typeof(KubeNode));
        Status = (JsonTypeInfo<StatusDto>)options.GetTypeInfo(typeof(StatusDto));
        Pod = (JsonTypeInfo<PodDto>)options.GetTypeInfo(typeof(PodDto));
    }

    public JsonTypeInfo<NodeListDto> NodeList { get; }

    public JsonTypeInfo<WatchEventDto> WatchEvent { get; }

    public JsonTypeInfo<KubeNode> Node { get; }

    public JsonTypeInfo<StatusDto> Status { get; }

    public JsonTypeInfo<PodDto> Pod { get; }
}

/// <summary>
/// Reads <c>metadata.annotations</c> keeping only the annotations flannel reads (<see cref="AnnotationNames"/>); the
/// rest (kubeadm's, the CRI socket, a <c>last-applied-configuration</c> of many kilobytes) are skipped without
/// allocating. The kept names are the shared <see cref="AnnotationNames"/> strings, not a copy per node.
/// </summary>
internal sealed class FlannelAnnotationsConverter : JsonConverter<FlannelAnnotations>
{
    private readonly string[] _names;
    private readonly byte[][] _utf8Names;

    public FlannelAnnotationsConverter(AnnotationNames names)
    {
        _names =
        [
            names.KubeSubnetManager, names.BackendType, names.BackendData, names.BackendV6Data, names.PublicIP, names.PublicIPv6,
            names.NodePublicIP, names.NodePublicIPv6, names.PublicIPOverwrite, names.PublicIPv6Overwrite,
        ];
        _utf8Names = [.. _names.Select(System.Text.Encoding.UTF8.GetBytes)];
    }

    /// <summary>A null map is read as an empty one (so the property is never null).</summary>
    public override bool HandleNull => true;

    public override FlannelAnnotations Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return FlannelAnnotations.Empty;
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException($"metadata.annotations must be an object, not {reader.TokenType}");
        }

        string?[]? kept = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            int known = Known(ref reader);
            reader.Read();
            if (known >= 0 && reader.TokenType == JsonTokenType.String)
            {
                (kept ??= new string?[_names.Length])[known] = reader.GetString()!;
            }
            else if (!reader.TrySkip())
            {
                // Cannot happen: the serializer reads the whole annotations object ahead before calling a converter.
                // (Skip() would throw here whenever the list is read from a stream, as its reader is never final.)
                throw new JsonException("metadata.annotations is incomplete");
            }
        }

        return kept is null ? FlannelAnnotations.Empty : new FlannelAnnotations(_names, kept);
    }

    public override void Write(Utf8JsonWriter writer, FlannelAnnotations value, JsonSerializerOptions options) =>
        throw new NotSupportedException("Flannel.NET only reads nodes; it writes annotations as patches.");

    /// <summary>The index of the property name among the names flannel reads, or -1.</summary>
    private int Known(ref Utf8JsonReader reader)
    {
        if (reader.ValueIsEscaped || reader.HasValueSequence)
        {
            string text = reader.GetString()!;
            return Array.IndexOf(_names, text);
        }

        ReadOnlySpan<byte> name = reader.ValueSpan;
        for (int i = 0; i < _utf8Names.Length; i++)
        {
            if (name.SequenceEqual(_utf8Names[i]))
            {
                return i;
            }
        }

        return -1;
    }
}
