using System.Text.Json.Nodes;

namespace Flannel.Store.Kube.Tests.ApiDouble;

/// <summary>An API answer with a Status object: a rejected patch, a bad list request, an expired continue token.</summary>
public sealed class ApiStatusException(int statusCode, string reason, string message) : Exception(message)
{
    public int StatusCode { get; } = statusCode;

    public string Reason { get; } = reason;
}

/// <summary>
/// The three patch formats kube-apiserver accepts for core objects, over <see cref="JsonNode"/> trees so that no field of
/// a kubectl-shaped Node is lost:
/// <list type="bullet">
/// <item>JSON merge patch (RFC 7386, <c>application/merge-patch+json</c>): objects merge recursively, <c>null</c>
/// deletes, anything else (arrays included) replaces.</item>
/// <item>Strategic merge patch (<c>application/strategic-merge-patch+json</c>): like merge patch, but lists with a
/// patch merge key in the Node schema merge element by element (<c>status.conditions</c> and <c>status.addresses</c>
/// by <c>type</c>, <c>metadata.ownerReferences</c> by <c>uid</c>), the primitive lists with patch strategy merge
/// (<c>metadata.finalizers</c>, <c>spec.podCIDRs</c>) are unions, and the directives <c>$patch: replace|delete</c>,
/// <c>$setElementOrder/&lt;list&gt;</c>, <c>$retainKeys</c> and <c>$deleteFromPrimitiveList/&lt;list&gt;</c> are honoured.</item>
/// <item>JSON patch (RFC 6902, <c>application/json-patch+json</c>): add, remove, replace, test, move, copy.</item>
/// </list>
/// </summary>
public static class PatchSemantics
{
    // From k8s.io/api/core/v1 and apimachinery ObjectMeta struct tags (patchStrategy / patchMergeKey).
    private static readonly Dictionary<string, string> MergeKeys = new(StringComparer.Ordinal)
    {
        ["status.conditions"] = "type",
        ["status.addresses"] = "type",
        ["metadata.ownerReferences"] = "uid",
        ["spec.containers"] = "name",
        ["status.containerStatuses"] = "name",
    };

    private static readonly HashSet<string> PrimitiveMergeLists = new(StringComparer.Ordinal)
    {
        "metadata.finalizers",
        "spec.podCIDRs",
    };

    public static JsonNode? MergePatch(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObject)
        {
            return patch?.DeepClone();
        }

        JsonObject result = target as JsonObject is { } t ? (JsonObject)t.DeepClone() : new JsonObject();
        foreach ((string key, JsonNode? value) in patchObject)
        {
            if (value is null)
            {
                result.Remove(key);
            }
            else
            {
                result[key] = MergePatch(result[key], value);
            }
        }

        return result;
    }

    public static JsonNode? StrategicMergePatch(JsonNode? target, JsonNode? patch) => Strategic(target, patch, "");

    private static JsonNode? Strategic(JsonNode? target, JsonNode? patch, string path)
    {
        if (patch is not JsonObject patchObject)
        {
            return patch?.DeepClone();
        }

        string? directive = (patchObject["$patch"] as JsonValue)?.GetValue<string>();
        if (directive == "replace")
        {
            return WithoutDirectives(patchObject);
        }

        if (directive is not (null or "merge"))
        {
            throw new ApiStatusException(400, "BadRequest", $"unknown patch type: {directive} in map: {patchObject.ToJsonString()}");
        }

        JsonObject result = target is JsonObject t ? (JsonObject)t.DeepClone() : new JsonObject();
        List<(string List, JsonArray Order)> orders = [];
        foreach ((string key, JsonNode? value) in patchObject)
        {
            string childPath = path.Length == 0 ? key : path + "." + key;
            if (key == "$patch")
            {
                continue;
            }

            if (key.StartsWith("$setElementOrder/", StringComparison.Ordinal))
            {
                orders.Add((key["$setElementOrder/".Length..], value as JsonArray ?? []));
                continue;
            }

            if (key.StartsWith("$deleteFromPrimitiveList/", StringComparison.Ordinal))
            {
                string list = key["$deleteFromPrimitiveList/".Length..];
                if (result[list] is JsonArray existing && value is JsonArray remove)
                {
                    for (int i = existing.Count - 1; i >= 0; i--)
                    {
                        if (remove.Any(r => JsonNode.DeepEquals(r, existing[i])))
                        {
                            existing.RemoveAt(i);
                        }
                    }
                }

                continue;
            }

            if (key == "$retainKeys")
            {
                HashSet<string> keep = (value as JsonArray ?? []).Select(k => k!.GetValue<string>()).ToHashSet(StringComparer.Ordinal);
                foreach (string existingKey in result.Select(p => p.Key).Where(k => !keep.Contains(k)).ToList())
                {
                    result.Remove(existingKey);
                }

                continue;
            }

            if (value is null)
            {
                result.Remove(key);
            }
            else if (value is JsonArray array && MergeKeys.TryGetValue(childPath, out string? mergeKey))
            {
                result[key] = MergeList(result[key] as JsonArray, array, mergeKey, childPath);
            }
            else if (value is JsonArray primitives && PrimitiveMergeLists.Contains(childPath))
            {
                JsonArray union = result[key] is JsonArray existing ? (JsonArray)existing.DeepClone() : [];
                foreach (JsonNode? item in primitives)
                {
                    if (!union.Any(u => JsonNode.DeepEquals(u, item)))
                    {
                        union.Add(item?.DeepClone());
                    }
                }

                result[key] = union;
            }
            else
            {
                result[key] = Strategic(result[key], value, childPath);
            }
        }

        foreach ((string list, JsonArray order) in orders)
        {
            if (result[list] is JsonArray items && MergeKeys.TryGetValue(path.Length == 0 ? list : path + "." + list, out string? key))
            {
                result[list] = Reorder(items, order, key);
            }
        }

        return result;
    }

    private static JsonArray MergeList(JsonArray? original, JsonArray patch, string mergeKey, string path)
    {
        JsonArray result = original is null ? [] : (JsonArray)original.DeepClone();
        foreach (JsonNode? item in patch)
        {
            if (item is not JsonObject element || element[mergeKey] is not JsonNode keyValue)
            {
                throw new ApiStatusException(
                    400, "BadRequest", $"map: {item?.ToJsonString() ?? "null"} does not contain declared merge key: {mergeKey}");
            }

            int index = -1;
            for (int i = 0; i < result.Count; i++)
            {
                if (JsonNode.DeepEquals(result[i]?[mergeKey], keyValue))
                {
                    index = i;
                    break;
                }
            }

            string? directive = (element["$patch"] as JsonValue)?.GetValue<string>();
            if (directive == "delete")
            {
                if (index >= 0)
                {
                    result.RemoveAt(index);
                }
            }
            else if (index >= 0)
            {
                result[index] = Strategic(result[index], element, path);
            }
            else
            {
                result.Add(WithoutDirectives(element));
            }
        }

        return result;
    }

    private static JsonArray Reorder(JsonArray items, JsonArray order, string mergeKey)
    {
        List<JsonNode?> remaining = [.. items.Select(i => i?.DeepClone())];
        JsonArray result = [];
        foreach (JsonNode? wanted in order)
        {
            JsonNode? key = wanted is JsonObject o ? o[mergeKey] : wanted;
            int at = remaining.FindIndex(i => JsonNode.DeepEquals(i?[mergeKey], key));
            if (at >= 0)
            {
                result.Add(remaining[at]);
                remaining.RemoveAt(at);
            }
        }

        foreach (JsonNode? rest in remaining)
        {
            result.Add(rest);
        }

        return result;
    }

    private static JsonObject WithoutDirectives(JsonObject value)
    {
        JsonObject copy = (JsonObject)value.DeepClone();
        foreach (string key in copy.Select(p => p.Key).Where(k => k.StartsWith('$')).ToList())
        {
            copy.Remove(key);
        }

        return copy;
    }

    public static JsonNode JsonPatch(JsonNode target, JsonArray operations)
    {
        JsonNode document = target.DeepClone();
        foreach (JsonNode? operation in operations)
        {
            string op = operation?["op"]?.GetValue<string>() ?? throw Invalid("missing op");
            string path = operation["path"]?.GetValue<string>() ?? throw Invalid("missing path");
            switch (op)
            {
                case "add":
                    document = Add(document, path, operation["value"]?.DeepClone());
                    break;
                case "remove":
                    Remove(document, path);
                    break;
                case "replace":
                    Remove(document, path);
                    document = Add(document, path, operation["value"]?.DeepClone());
                    break;
                case "test":
                    if (!JsonNode.DeepEquals(Get(document, path), operation["value"]))
                    {
                        throw new ApiStatusException(422, "Invalid", $"testing value {path} failed");
                    }

                    break;
                case "move":
                case "copy":
                    string from = operation["from"]?.GetValue<string>() ?? throw Invalid("missing from");
                    JsonNode? moved = Get(document, from)?.DeepClone();
                    if (op == "move")
                    {
                        Remove(document, from);
                    }

                    document = Add(document, path, moved);
                    break;
                default:
                    throw Invalid($"unexpected kind: {op}");
            }
        }

        return document;
    }

    private static ApiStatusException Invalid(string message) => new(422, "Invalid", message);

    private static string[] Segments(string pointer) =>
        pointer.Length == 0 ? [] : pointer[1..].Split('/').Select(s => s.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal)).ToArray();

    private static JsonNode? Get(JsonNode document, string pointer)
    {
        JsonNode? current = document;
        foreach (string segment in Segments(pointer))
        {
            current = current switch
            {
                JsonObject o when o.ContainsKey(segment) => o[segment],
                JsonArray a when int.TryParse(segment, out int i) && i >= 0 && i < a.Count => a[i],
                _ => throw Invalid($"doc is missing path: {pointer}"),
            };
        }

        return current;
    }

    private static JsonNode Add(JsonNode document, string pointer, JsonNode? value)
    {
        string[] segments = Segments(pointer);
        if (segments.Length == 0)
        {
            return value ?? throw Invalid("cannot replace the document with null");
        }

        JsonNode? parent = Get(document, "/" + string.Join('/', segments[..^1].Select(s => s.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal))));
        if (segments.Length == 1)
        {
            parent = document;
        }

        string last = segments[^1];
        switch (parent)
        {
            case JsonObject o:
                o[last] = value;
                break;
            case JsonArray a when last == "-":
                a.Add(value);
                break;
            case JsonArray a when int.TryParse(last, out int i) && i >= 0 && i <= a.Count:
                a.Insert(i, value);
                break;
            default:
                throw Invalid($"doc is missing path: {pointer}");
        }

        return document;
    }

    private static void Remove(JsonNode document, string pointer)
    {
        string[] segments = Segments(pointer);
        JsonNode? parent = segments.Length == 1
            ? document
            : Get(document, "/" + string.Join('/', segments[..^1].Select(s => s.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal))));
        string last = segments[^1];
        bool removed = parent switch
        {
            JsonObject o => o.Remove(last),
            JsonArray a when int.TryParse(last, out int i) && i >= 0 && i < a.Count => RemoveAt(a, i),
            _ => false,
        };
        if (!removed)
        {
            throw Invalid($"doc is missing path: {pointer}");
        }
    }

    private static bool RemoveAt(JsonArray array, int index)
    {
        array.RemoveAt(index);
        return true;
    }
}
