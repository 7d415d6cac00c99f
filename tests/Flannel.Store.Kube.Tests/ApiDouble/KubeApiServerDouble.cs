using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Flannel.Store.Kube.Tests.ApiDouble;

/// <summary>One HTTP request the double received, for assertions on exact bodies.</summary>
public sealed record RecordedRequest(string Method, string Path, string Query, string? ContentType, string Body);

/// <summary>
/// A TEST DOUBLE of kube-apiserver (not a real API server): Kestrel on 127.0.0.1 with an ephemeral port, serving the
/// slice of the core/v1 API flannel's kube mode uses, with the real server's semantics for that slice:
/// <list type="bullet">
/// <item><c>GET /api/v1/nodes</c> list (a NodeList with <c>metadata.resourceVersion</c>; <c>fieldSelector=metadata.name=X</c>)
/// with the list semantics of <c>resourceVersion</c>: unset or <c>""</c> is a consistent read, <c>"0"</c> is "any" and
/// served from the watch cache, which ignores <c>limit</c>, a number N is "not older than N" (504 "Too large resource
/// version" when N is ahead of the server); <c>limit</c> paginates a consistent snapshot with <c>continue</c> tokens and
/// <c>remainingItemCount</c>, and a token whose snapshot has been compacted gets 410 Expired;
/// and the same URL with <c>watch=true</c>: newline-delimited <c>{"type":…,"object":…}</c> events flushed one by one,
/// replayed from the requested resourceVersion (or synthetic ADDED events for none / "0"), BOOKMARK events when
/// <c>allowWatchBookmarks=true</c>, <c>timeoutSeconds</c>, and an ERROR event carrying Status 410 "Expired" when the
/// resourceVersion is older than the compacted history;</item>
/// <item><c>GET /api/v1/nodes/{name}</c>, <c>GET /api/v1/namespaces/{ns}/pods/{name}</c> (404 Status when absent);</item>
/// <item><c>PATCH /api/v1/nodes/{name}</c> and <c>…/status</c> with strategic-merge, JSON merge and JSON patch
/// (<see cref="PatchSemantics"/>), 415 for any other media type, the status subresource keeping <c>spec</c> and the
/// main resource keeping <c>status</c> (as the node strategies do), resourceVersion preconditions (409), and no new
/// resourceVersion for a patch that changes nothing.</item>
/// </list>
/// One global resourceVersion counter stands in for etcd's revision. Test controls: add/update/delete objects,
/// <see cref="CompactHistory"/>, <see cref="ExpireWatches"/>, <see cref="DropWatchConnections"/>,
/// <see cref="EndWatches"/>, <see cref="SendBookmarks"/>, <see cref="FailNext"/>, and <see cref="Requests"/>.
/// </summary>
public sealed class KubeApiServerDouble : IAsyncDisposable
{
    private const string UnsupportedPatchMessage =
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json";

    // kube-apiserver (Go encoding/json) writes quotes as \" and non-ASCII as is.
    private static readonly JsonSerializerOptions Wire = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly Lock _gate = new();
    private readonly SortedDictionary<string, JsonObject> _nodes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, JsonObject> _pods = new(StringComparer.Ordinal);
    private readonly List<(long ResourceVersion, string Type, JsonObject Node)> _history = [];
    private readonly List<NodeWatch> _watches = [];
    private readonly List<(string Method, string PathSuffix, int Remaining, int Status)> _failures = [];
    private WebApplication? _app;
    private long _resourceVersion = 1000;
    private long _compactedThrough;

    // The snapshots paginated lists read from (what etcd's MVCC keeps until compaction), by resourceVersion.
    private readonly Dictionary<long, SortedDictionary<string, JsonObject>> _snapshots = [];

    private KubeApiServerDouble()
    {
    }

    /// <summary>The base URL, e.g. <c>http://127.0.0.1:41234</c>.</summary>
    public string Url { get; private set; } = "";

    /// <summary>Every request received, in order.</summary>
    public ConcurrentQueue<RecordedRequest> Requests { get; } = new();

    /// <summary>The number of node watches currently open.</summary>
    public int OpenWatches
    {
        get
        {
            lock (_gate)
            {
                return _watches.Count;
            }
        }
    }

    /// <summary>
    /// Misbehaves like a faulty server or proxy: accepts <c>fieldSelector=metadata.name=X</c> and then lists and
    /// watches every node anyway. Applies to requests made after it is set.
    /// </summary>
    public bool IgnoreFieldSelectors { get; set; }

    /// <summary>
    /// Behaves like an API server without a watch cache (<c>--watch-cache=false</c>): a list at
    /// <c>resourceVersion=0</c> is then read from etcd and honours <c>limit</c>.
    /// </summary>
    public bool WatchCacheDisabled { get; set; }

    /// <summary>When set, the history is compacted right after this many more list pages with a continue token have been served.</summary>
    public int? CompactAfterListPages { get; set; }

    /// <summary>The current resourceVersion.</summary>
    public long ResourceVersion
    {
        get
        {
            lock (_gate)
            {
                return _resourceVersion;
            }
        }
    }

    public static async Task<KubeApiServerDouble> StartAsync()
    {
        KubeApiServerDouble server = new();
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        WebApplication app = builder.Build();
        app.Run(server.HandleAsync);
        await app.StartAsync();
        server._app = app;
        server.Url = app.Urls.First();
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        DropWatchConnections();
        WebApplication? app = Interlocked.Exchange(ref _app, null);
        if (app is not null)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    // ------------------------------------------------------------------ test controls

    /// <summary>Adds a node (kubectl JSON). Emits ADDED.</summary>
    public void AddNode(string json)
    {
        JsonObject node = JsonNode.Parse(json)!.AsObject();
        lock (_gate)
        {
            string name = Name(node);
            if (_nodes.ContainsKey(name))
            {
                throw new InvalidOperationException($"node {name} already exists");
            }

            // The API server stamps every new object (second resolution); a fixture may carry its own time.
            JsonObject metadata = node["metadata"]!.AsObject();
            metadata["creationTimestamp"] ??= DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            Commit("ADDED", name, node);
        }
    }

    /// <summary>Changes a node as a controller or kubelet would. Emits MODIFIED.</summary>
    public void UpdateNode(string name, Action<JsonObject> change)
    {
        lock (_gate)
        {
            JsonObject node = (JsonObject)_nodes[name].DeepClone();
            change(node);
            Commit("MODIFIED", name, node);
        }
    }

    /// <summary>Deletes a node. Emits DELETED with its last state.</summary>
    public void DeleteNode(string name)
    {
        lock (_gate)
        {
            JsonObject node = (JsonObject)_nodes[name].DeepClone();
            _nodes.Remove(name);
            long rv = ++_resourceVersion;
            node["metadata"]!["resourceVersion"] = rv.ToString(CultureInfo.InvariantCulture);
            Publish(rv, "DELETED", node);
        }
    }

    public JsonObject GetNode(string name)
    {
        lock (_gate)
        {
            return (JsonObject)_nodes[name].DeepClone();
        }
    }

    public IReadOnlyDictionary<string, string> Annotations(string name)
    {
        JsonObject node = GetNode(name);
        return node["metadata"]?["annotations"] is JsonObject a
            ? a.ToDictionary(p => p.Key, p => p.Value!.GetValue<string>(), StringComparer.Ordinal)
            : new Dictionary<string, string>();
    }

    public void AddPod(string json)
    {
        JsonObject pod = JsonNode.Parse(json)!.AsObject();
        lock (_gate)
        {
            pod["metadata"]!["resourceVersion"] = (++_resourceVersion).ToString(CultureInfo.InvariantCulture);
            _pods[$"{pod["metadata"]!["namespace"]}/{Name(pod)}"] = pod;
        }
    }

    /// <summary>
    /// Forgets the event history up to now, as etcd compaction does: a watch from any resourceVersion handed out so far
    /// gets 410. The revision moves on by one first (as it does constantly in a real cluster, where every object of
    /// every kind shares the counter), so that a fresh list gives a resourceVersion that can be watched from.
    /// </summary>
    public void CompactHistory()
    {
        lock (_gate)
        {
            _compactedThrough = ++_resourceVersion;
            _history.Clear();
            _snapshots.Clear();
        }
    }

    /// <summary>
    /// Compacts the history and ends every open watch with an ERROR event carrying Status 410 "Expired", what a
    /// client sees when the watch cache has moved past its resourceVersion.
    /// </summary>
    public void ExpireWatches()
    {
        lock (_gate)
        {
            CompactHistory();
            foreach (NodeWatch watch in _watches)
            {
                watch.Lines.Writer.TryWrite(ExpiredEvent(watch.FromResourceVersion));
                watch.Lines.Writer.TryComplete();
            }
        }
    }

    /// <summary>Aborts the TCP connection of every open watch (no final chunk: the client sees a broken stream).</summary>
    public void DropWatchConnections()
    {
        lock (_gate)
        {
            foreach (NodeWatch watch in _watches)
            {
                watch.Context.Abort();
            }
        }
    }

    /// <summary>Ends every open watch normally (what <c>timeoutSeconds</c> does): lines already queued are still sent first.</summary>
    public void EndWatches()
    {
        lock (_gate)
        {
            foreach (NodeWatch watch in _watches)
            {
                watch.Lines.Writer.TryComplete();
            }
        }
    }

    /// <summary>Sends a BOOKMARK with the current resourceVersion to each watch that asked for bookmarks.</summary>
    public void SendBookmarks()
    {
        lock (_gate)
        {
            string line = Event("BOOKMARK", new JsonObject
            {
                ["kind"] = "Node",
                ["apiVersion"] = "v1",
                ["metadata"] = new JsonObject { ["resourceVersion"] = _resourceVersion.ToString(CultureInfo.InvariantCulture) },
            });
            foreach (NodeWatch watch in _watches.Where(w => w.Bookmarks))
            {
                watch.Lines.Writer.TryWrite(line);
            }
        }
    }

    /// <summary>Makes the next <paramref name="count"/> requests with this method and path ending answer <paramref name="status"/>.</summary>
    public void FailNext(string method, string pathSuffix, int count, int status)
    {
        lock (_gate)
        {
            _failures.Add((method, pathSuffix, count, status));
        }
    }

    public RecordedRequest[] Patches() => [.. Requests.Where(r => r.Method == "PATCH")];

    // ------------------------------------------------------------------ HTTP

    private async Task HandleAsync(HttpContext context)
    {
        HttpRequest request = context.Request;
        string body;
        using (StreamReader reader = new(request.Body, Encoding.UTF8))
        {
            body = await reader.ReadToEndAsync(context.RequestAborted);
        }

        string path = request.Path.Value ?? "";
        RecordedRequest record = new(request.Method, path, request.QueryString.Value ?? "", request.ContentType, body);

        // A watch is recorded when it opens; any other request once it has been answered, so that a test which sees
        // the request also sees its effect.
        bool isWatch = request.Query["watch"] == "true" || request.Query["watch"] == "1";
        if (isWatch)
        {
            Requests.Enqueue(record);
        }

        try
        {
            await DispatchAsync(context, request, path, body);
        }
        finally
        {
            if (!isWatch)
            {
                Requests.Enqueue(record);
            }
        }
    }

    private async Task DispatchAsync(HttpContext context, HttpRequest request, string path, string body)
    {
        if (TakeFailure(request.Method, path) is int failure)
        {
            await WriteStatusAsync(context, failure, failure == 500 ? "InternalError" : "ServiceUnavailable", "injected failure");
            return;
        }

        string[] parts = path.Trim('/').Split('/');
        try
        {
            switch (request.Method, parts)
            {
                case ("GET", ["api", "v1", "nodes"]) when request.Query["watch"] == "true" || request.Query["watch"] == "1":
                    await WatchNodesAsync(context);
                    return;
                case ("GET", ["api", "v1", "nodes"]):
                    await ListNodesAsync(context);
                    return;
                case ("GET", ["api", "v1", "nodes", var name]):
                    await GetNodeAsync(context, name);
                    return;
                case ("PATCH", ["api", "v1", "nodes", var name]):
                    await PatchNodeAsync(context, name, statusSubresource: false, body);
                    return;
                case ("PATCH", ["api", "v1", "nodes", var name, "status"]):
                    await PatchNodeAsync(context, name, statusSubresource: true, body);
                    return;
                case ("GET", ["api", "v1", "namespaces", var ns, "pods", var name]):
                    await GetPodAsync(context, ns, name);
                    return;
                default:
                    await WriteStatusAsync(context, 404, "NotFound", "the server could not find the requested resource");
                    return;
            }
        }
        catch (ApiStatusException e)
        {
            await WriteStatusAsync(context, e.StatusCode, e.Reason, e.Message);
        }
        catch (Exception e) when (e is not OperationCanceledException && !context.Response.HasStarted)
        {
            // A bug in the double, not an API answer: make it visible in the failing test.
            await WriteStatusAsync(context, 500, "InternalError", $"api double bug: {e}");
        }
    }

    private int? TakeFailure(string method, string path)
    {
        lock (_gate)
        {
            for (int i = 0; i < _failures.Count; i++)
            {
                (string m, string suffix, int remaining, int status) = _failures[i];
                if (m == method && path.EndsWith(suffix, StringComparison.Ordinal))
                {
                    if (remaining <= 1)
                    {
                        _failures.RemoveAt(i);
                    }
                    else
                    {
                        _failures[i] = (m, suffix, remaining - 1, status);
                    }

                    return status;
                }
            }
        }

        return null;
    }

    private async Task ListNodesAsync(HttpContext context)
    {
        if (!TryFieldSelector(context, out string? onlyName))
        {
            await WriteStatusAsync(context, 400, "BadRequest", $"field label not supported: {context.Request.Query["fieldSelector"]}");
            return;
        }

        IQueryCollection query = context.Request.Query;
        string requested = query["resourceVersion"].ToString();
        string continueToken = query["continue"].ToString();
        int limit = 0;
        if (query.ContainsKey("limit") && (!int.TryParse(query["limit"], NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit < 0))
        {
            await WriteStatusAsync(context, 400, "BadRequest", $"invalid limit: {query["limit"]}");
            return;
        }

        JsonObject list;
        lock (_gate)
        {
            long snapshotVersion;
            SortedDictionary<string, JsonObject> source;
            string after = "";
            if (continueToken.Length > 0)
            {
                if (requested.Length > 0 && requested != "0")
                {
                    throw new ApiStatusException(400, "BadRequest", "specifying resource version is not allowed when using continue");
                }

                if (!TryDecodeContinue(continueToken, out snapshotVersion, out after))
                {
                    throw new ApiStatusException(400, "BadRequest", $"continue key is not valid: {continueToken}");
                }

                if (snapshotVersion < _compactedThrough || !_snapshots.TryGetValue(snapshotVersion, out source!))
                {
                    throw new ApiStatusException(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.");
                }
            }
            else
            {
                if (requested.Length > 0 && requested != "0")
                {
                    if (!long.TryParse(requested, NumberStyles.None, CultureInfo.InvariantCulture, out long notOlderThan))
                    {
                        throw new ApiStatusException(400, "BadRequest", $"invalid resource version: {requested}");
                    }

                    if (notOlderThan > _resourceVersion)
                    {
                        // What the watch cache answers after waiting in vain for the revision to arrive.
                        throw new ApiStatusException(504, "Timeout", $"Too large resource version: {notOlderThan}, current: {_resourceVersion}");
                    }
                }

                // "0" is served by the watch cache, which returns everything at once whatever the limit.
                if (requested == "0" && !WatchCacheDisabled)
                {
                    limit = 0;
                }

                snapshotVersion = _resourceVersion;
                source = _nodes;
            }

            JsonArray items = [];
            string? next = null;
            int remaining = 0;
            foreach ((string name, JsonObject node) in source)
            {
                if (string.CompareOrdinal(name, after) <= 0 || (onlyName is not null && onlyName != name))
                {
                    continue;
                }

                if (limit > 0 && items.Count == limit)
                {
                    remaining++;
                    continue;
                }

                JsonObject item = (JsonObject)node.DeepClone();

                // List items carry no kind/apiVersion on the wire; the list does.
                item.Remove("kind");
                item.Remove("apiVersion");
                items.Add(item);
                next = name;
            }

            JsonObject metadata = new() { ["resourceVersion"] = snapshotVersion.ToString(CultureInfo.InvariantCulture) };
            if (remaining > 0)
            {
                if (!_snapshots.ContainsKey(snapshotVersion))
                {
                    _snapshots[snapshotVersion] = new SortedDictionary<string, JsonObject>(
                        source.ToDictionary(p => p.Key, p => (JsonObject)p.Value.DeepClone()), StringComparer.Ordinal);
                }

                metadata["continue"] = EncodeContinue(snapshotVersion, next!);
                metadata["remainingItemCount"] = remaining;
                if (CompactAfterListPages is int pages)
                {
                    CompactAfterListPages = pages > 1 ? pages - 1 : null;
                    if (pages <= 1)
                    {
                        CompactHistory();
                    }
                }
            }

            list = new JsonObject
            {
                ["kind"] = "NodeList",
                ["apiVersion"] = "v1",
                ["metadata"] = metadata,
                ["items"] = items,
            };
        }

        await WriteJsonAsync(context, 200, list);
    }

    /// <summary>kube-apiserver's continue token: unpadded base64url of <c>{"v":"meta.k8s.io/v1","rv":N,"start":"&lt;key&gt;\u0000"}</c>.</summary>
    private static string EncodeContinue(long resourceVersion, string lastName)
    {
        string json = new JsonObject { ["v"] = "meta.k8s.io/v1", ["rv"] = resourceVersion, ["start"] = lastName + "\u0000" }.ToJsonString();
        return Convert.ToBase64String(Encoding.UTF8.GetBytes(json)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    private static bool TryDecodeContinue(string token, out long resourceVersion, out string after)
    {
        resourceVersion = 0;
        after = "";
        try
        {
            string base64 = token.Replace('-', '+').Replace('_', '/');
            base64 = base64.PadRight(base64.Length + ((4 - (base64.Length % 4)) % 4), '=');
            JsonObject decoded = JsonNode.Parse(Convert.FromBase64String(base64))!.AsObject();
            if (decoded["v"]?.GetValue<string>() != "meta.k8s.io/v1" || decoded["rv"] is null || decoded["start"] is null)
            {
                return false;
            }

            resourceVersion = decoded["rv"]!.GetValue<long>();
            after = decoded["start"]!.GetValue<string>().TrimEnd('\0');
            return resourceVersion > 0;
        }
        catch (Exception e) when (e is FormatException or JsonException or InvalidOperationException)
        {
            return false;
        }
    }

    private async Task WatchNodesAsync(HttpContext context)
    {
        if (!TryFieldSelector(context, out string? onlyName))
        {
            await WriteStatusAsync(context, 400, "BadRequest", $"field label not supported: {context.Request.Query["fieldSelector"]}");
            return;
        }

        string requested = context.Request.Query["resourceVersion"].ToString();
        bool bookmarks = context.Request.Query["allowWatchBookmarks"] == "true";
        TimeSpan? timeout = int.TryParse(context.Request.Query["timeoutSeconds"], CultureInfo.InvariantCulture, out int seconds) && seconds > 0
            ? TimeSpan.FromSeconds(seconds)
            : null;

        NodeWatch watch = new(context, onlyName, bookmarks, requested);
        lock (_gate)
        {
            if (requested is "" or "0")
            {
                // "Start at most recent" / "any": synthetic ADDED events for the current state.
                foreach ((string name, JsonObject node) in _nodes)
                {
                    if (onlyName is null || onlyName == name)
                    {
                        watch.Lines.Writer.TryWrite(Event("ADDED", node));
                    }
                }
            }
            else if (!long.TryParse(requested, NumberStyles.None, CultureInfo.InvariantCulture, out long from))
            {
                watch.Lines.Writer.TryWrite(Event("ERROR", StatusObject(400, "BadRequest", $"invalid resource version: {requested}")));
                watch.Lines.Writer.TryComplete();
            }
            else if (from < _compactedThrough)
            {
                watch.Lines.Writer.TryWrite(ExpiredEvent(requested));
                watch.Lines.Writer.TryComplete();
            }
            else
            {
                foreach ((long rv, string type, JsonObject node) in _history)
                {
                    if (rv > from && (onlyName is null || onlyName == Name(node)))
                    {
                        watch.Lines.Writer.TryWrite(Event(type, node));
                    }
                }
            }

            _watches.Add(watch);
        }

        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        using CancellationTokenSource stop = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        if (timeout is { } t)
        {
            stop.CancelAfter(t);
        }

        try
        {
            await context.Response.StartAsync(stop.Token);
            await foreach (string line in watch.Lines.Reader.ReadAllAsync(stop.Token))
            {
                await context.Response.WriteAsync(line + "\n", stop.Token);
                await context.Response.Body.FlushAsync(stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            // Timeout, client gone, or connection aborted by DropWatchConnections.
        }
        finally
        {
            lock (_gate)
            {
                _watches.Remove(watch);
            }
        }
    }

    private async Task GetNodeAsync(HttpContext context, string name)
    {
        JsonObject? node;
        lock (_gate)
        {
            node = _nodes.TryGetValue(name, out JsonObject? found) ? (JsonObject)found.DeepClone() : null;
        }

        if (node is null)
        {
            await WriteStatusAsync(context, 404, "NotFound", $"nodes \"{name}\" not found", name, "nodes");
            return;
        }

        await WriteJsonAsync(context, 200, node);
    }

    private async Task GetPodAsync(HttpContext context, string ns, string name)
    {
        JsonObject? pod;
        lock (_gate)
        {
            pod = _pods.TryGetValue($"{ns}/{name}", out JsonObject? found) ? (JsonObject)found.DeepClone() : null;
        }

        if (pod is null)
        {
            await WriteStatusAsync(context, 404, "NotFound", $"pods \"{name}\" not found", name, "pods");
            return;
        }

        await WriteJsonAsync(context, 200, pod);
    }

    private async Task PatchNodeAsync(HttpContext context, string name, bool statusSubresource, string body)
    {
        string mediaType = (context.Request.ContentType ?? "").Split(';')[0].Trim().ToLowerInvariant();
        if (mediaType is not ("application/strategic-merge-patch+json" or "application/merge-patch+json" or "application/json-patch+json"))
        {
            await WriteStatusAsync(context, 415, "UnsupportedMediaType", UnsupportedPatchMessage);
            return;
        }

        JsonNode? patch;
        try
        {
            patch = JsonNode.Parse(body);
        }
        catch (JsonException e)
        {
            await WriteStatusAsync(context, 400, "BadRequest", $"error decoding patch: {e.Message}");
            return;
        }

        JsonObject result;
        lock (_gate)
        {
            if (!_nodes.TryGetValue(name, out JsonObject? current))
            {
                throw new ApiStatusException(404, "NotFound", $"nodes \"{name}\" not found");
            }

            JsonNode? patched = mediaType switch
            {
                "application/merge-patch+json" => PatchSemantics.MergePatch(current, patch),
                "application/strategic-merge-patch+json" => PatchSemantics.StrategicMergePatch(current, patch),
                _ => PatchSemantics.JsonPatch(current, patch as JsonArray ?? throw new ApiStatusException(400, "BadRequest", "json patch must be an array")),
            };
            if (patched is not JsonObject updated)
            {
                throw new ApiStatusException(422, "Invalid", "the patched object is not a JSON object");
            }

            string currentVersion = current["metadata"]!["resourceVersion"]!.GetValue<string>();
            if ((patch as JsonObject)?["metadata"]?["resourceVersion"] is JsonValue precondition && precondition.GetValue<string>() != currentVersion)
            {
                throw new ApiStatusException(
                    409, "Conflict", $"Operation cannot be fulfilled on nodes \"{name}\": the object has been modified; please apply your changes to the latest version and try again");
            }

            ValidateNode(updated);

            // nodeStatusStrategy keeps the spec; nodeStrategy keeps the status. Identity fields never change.
            string keep = statusSubresource ? "spec" : "status";
            updated[keep] = current[keep]?.DeepClone();
            foreach (string field in new[] { "name", "uid", "creationTimestamp", "resourceVersion" })
            {
                ((JsonObject)updated["metadata"]!)[field] = current["metadata"]![field]?.DeepClone();
            }

            if (!JsonNode.DeepEquals(updated, current))
            {
                Commit("MODIFIED", name, updated);
            }

            result = (JsonObject)_nodes[name].DeepClone();
        }

        await WriteJsonAsync(context, 200, result);
    }

    /// <summary>The type checks the API server's decoder makes on the fields a patch can reach (maps of strings, conditions with a type).</summary>
    private static void ValidateNode(JsonObject node)
    {
        if (node["metadata"] is not JsonObject metadata)
        {
            throw new ApiStatusException(422, "Invalid", "metadata: Required value");
        }

        foreach (string map in new[] { "annotations", "labels" })
        {
            if (metadata[map] is JsonObject entries)
            {
                foreach ((string key, JsonNode? value) in entries)
                {
                    if (value is not JsonValue v || v.GetValueKind() != JsonValueKind.String)
                    {
                        throw new ApiStatusException(
                            400, "BadRequest", $"json: cannot unmarshal {value?.GetValueKind().ToString().ToLowerInvariant() ?? "null"} into Go struct field ObjectMeta.metadata.{map} of type string (key {key})");
                    }
                }
            }
            else if (metadata[map] is not null)
            {
                throw new ApiStatusException(400, "BadRequest", $"json: cannot unmarshal into Go struct field ObjectMeta.metadata.{map} of type map[string]string");
            }
        }

        if (node["status"]?["conditions"] is JsonArray conditions)
        {
            foreach (JsonNode? condition in conditions)
            {
                if (condition?["type"] is not JsonValue)
                {
                    throw new ApiStatusException(422, "Invalid", "status.conditions.type: Required value");
                }
            }
        }
    }

    // ------------------------------------------------------------------ state changes

    private void Commit(string type, string name, JsonObject node)
    {
        long rv = ++_resourceVersion;
        node["metadata"]!["resourceVersion"] = rv.ToString(CultureInfo.InvariantCulture);
        _nodes[name] = node;
        Publish(rv, type, (JsonObject)node.DeepClone());
    }

    private void Publish(long rv, string type, JsonObject node)
    {
        _history.Add((rv, type, node));
        string line = Event(type, node);
        string name = Name(node);
        foreach (NodeWatch watch in _watches)
        {
            if (watch.OnlyName is null || watch.OnlyName == name)
            {
                watch.Lines.Writer.TryWrite(line);
            }
        }
    }

    private string ExpiredEvent(string from) =>
        Event("ERROR", StatusObject(410, "Expired", $"too old resource version: {from} ({_compactedThrough + 1})"));

    private static string Event(string type, JsonObject obj)
    {
        JsonObject copy = (JsonObject)obj.DeepClone();
        if (type != "ERROR")
        {
            copy["kind"] ??= "Node";
            copy["apiVersion"] ??= "v1";
        }

        return new JsonObject { ["type"] = type, ["object"] = copy }.ToJsonString(Wire);
    }

    private static JsonObject StatusObject(int code, string reason, string message, string? name = null, string? kind = null)
    {
        JsonObject status = new()
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = message,
            ["reason"] = reason,
        };
        if (name is not null)
        {
            status["details"] = new JsonObject { ["name"] = name, ["kind"] = kind };
        }

        status["code"] = code;
        return status;
    }

    private static Task WriteStatusAsync(HttpContext context, int code, string reason, string message, string? name = null, string? kind = null) =>
        WriteJsonAsync(context, code, StatusObject(code, reason, message, name, kind));

    private static async Task WriteJsonAsync(HttpContext context, int code, JsonNode body)
    {
        context.Response.StatusCode = code;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(Wire), context.RequestAborted);
    }

    private bool TryFieldSelector(HttpContext context, out string? onlyName)
    {
        onlyName = null;
        string selector = context.Request.Query["fieldSelector"].ToString();
        if (selector.Length == 0)
        {
            return true;
        }

        const string ByName = "metadata.name=";
        if (selector.StartsWith(ByName, StringComparison.Ordinal) && !selector.Contains(',', StringComparison.Ordinal))
        {
            // A faulty server or proxy accepts the selector and then sends everything.
            onlyName = IgnoreFieldSelectors ? null : selector[ByName.Length..];
            return true;
        }

        return false;
    }

    private static string Name(JsonObject obj) => obj["metadata"]!["name"]!.GetValue<string>();

    private sealed class NodeWatch(HttpContext context, string? onlyName, bool bookmarks, string fromResourceVersion)
    {
        public HttpContext Context { get; } = context;

        public string? OnlyName { get; } = onlyName;

        public bool Bookmarks { get; } = bookmarks;

        public string FromResourceVersion { get; } = fromResourceVersion;

        public Channel<string> Lines { get; } = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    }
}
