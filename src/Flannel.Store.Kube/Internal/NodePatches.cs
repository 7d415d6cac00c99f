using System.Globalization;
using System.Text;
using Flannel.Subnets;

namespace Flannel.Store.Kube.Internal;

/// <summary>
/// The strategic-merge patch bodies flannel sends to <c>PATCH /api/v1/nodes/{name}/status</c>, byte for byte.
/// </summary>
internal static class NodePatches
{
    /// <summary>
    /// The annotations this node must carry for <paramref name="attributes"/>, by flannel's rules
    /// (<c>AcquireLease</c>): <c>backend-type</c> always; <c>backend-data</c> and <c>public-ip</c> unless a
    /// vxlan lease has no IPv4 data; <c>backend-v6-data</c> and <c>public-ipv6</c> for the IPv6 forms of vxlan,
    /// wireguard, host-gw and extension; a user's <c>public-ip(v6)-overwrite</c> wins over the detected address;
    /// <c>kube-subnet-manager: "true"</c>. Returns only the annotations whose value differs from the node's.
    /// </summary>
    /// <param name="node">The node as the API server last returned it.</param>
    /// <param name="names">The annotation names under the configured prefix.</param>
    /// <param name="attributes">The lease attributes to publish.</param>
    /// <param name="overrides">Receives (annotation, value) for each public IP taken from an overwrite annotation.</param>
    public static SortedDictionary<string, string> ChangedAnnotations(
        KubeNode node, AnnotationNames names, LeaseAttributes attributes, List<(string Annotation, string Value)>? overrides = null)
    {
        Dictionary<string, string> desired = new(StringComparer.Ordinal);
        string backendType = attributes.BackendType ?? "";

        // Go marshals a nil json.RawMessage as "null"; flannel compares and writes that text.
        string data4 = attributes.BackendData ?? "null";
        string data6 = attributes.BackendV6Data ?? "null";
        desired[names.BackendType] = backendType;

        if ((backendType == "vxlan" && data4 != "null") || (backendType == "wireguard" && data4 != "null") || backendType != "vxlan")
        {
            desired[names.BackendData] = data4;
            desired[names.PublicIP] = PublicAddress(node, names.PublicIPOverwrite, attributes.PublicIP.ToString(), overrides);
        }

        bool hasV6 = attributes.PublicIPv6 is not null;
        if (hasV6 && ((backendType == "vxlan" && data6 != "null")
            || (backendType == "wireguard" && data6 != "null")
            || backendType == "host-gw"
            || backendType == "extension"))
        {
            desired[names.BackendV6Data] = data6;
            desired[names.PublicIPv6] = PublicAddress(node, names.PublicIPv6Overwrite, attributes.PublicIPv6!.ToString(), overrides);
        }

        desired[names.KubeSubnetManager] = "true";

        SortedDictionary<string, string> changed = new(StringComparer.Ordinal);
        foreach ((string key, string value) in desired)
        {
            if (NodeFields.Annotation(node, key) != value)
            {
                changed[key] = value;
            }
        }

        return changed;
    }

    /// <summary>
    /// <c>{"metadata":{"annotations":{...}}}</c> with the keys in byte order, as Go's strategic-merge
    /// <c>CreateTwoWayMergePatch</c> of the old and new node gives when only annotations changed. A null value
    /// deletes the annotation.
    /// </summary>
    public static string AnnotationsPatch(IEnumerable<KeyValuePair<string, string?>> annotations)
    {
        StringBuilder json = new("{\"metadata\":{\"annotations\":{");
        bool first = true;
        foreach ((string key, string? value) in annotations.OrderBy(a => a.Key, StringComparer.Ordinal))
        {
            if (!first)
            {
                json.Append(',');
            }

            first = false;
            GoJson.WriteString(json, key);
            json.Append(':');
            if (value is null)
            {
                json.Append("null");
            }
            else
            {
                GoJson.WriteString(json, value);
            }
        }

        return json.Append("}}}").ToString();
    }

    /// <summary>
    /// flannel's <c>CompleteLease</c> body: one NodeCondition in Go's field order (type, status,
    /// lastHeartbeatTime, lastTransitionTime, reason, message), times as RFC 3339 UTC seconds, merged by
    /// <c>type</c> on the server.
    /// </summary>
    public static string NetworkUnavailableFalse(DateTimeOffset now)
    {
        string time = now.UtcDateTime.ToString("yyyy'-'MM'-'dd'T'HH':'mm':'ss'Z'", CultureInfo.InvariantCulture);
        return "{\"status\":{\"conditions\":[{\"type\":\"NetworkUnavailable\",\"status\":\"False\","
            + $"\"lastHeartbeatTime\":\"{time}\",\"lastTransitionTime\":\"{time}\","
            + "\"reason\":\"FlannelIsUp\",\"message\":\"Flannel is running on this node\"}]}}";
    }

    private static string PublicAddress(KubeNode node, string overwriteAnnotation, string detected, List<(string, string)>? overrides)
    {
        string? overwrite = NodeFields.Annotation(node, overwriteAnnotation);
        if (string.IsNullOrEmpty(overwrite))
        {
            return detected;
        }

        overrides?.Add((overwriteAnnotation, overwrite));
        return overwrite;
    }
}
