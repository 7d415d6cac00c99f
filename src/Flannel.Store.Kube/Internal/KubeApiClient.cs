using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using k8s;

namespace Flannel.Store.Kube.Internal;

/// <summary>An API answer other than 2xx, with the Status object's reason and message when the body is one.</summary>
internal sealed class KubeApiException : Exception
{
    public KubeApiException(HttpStatusCode statusCode, string? reason, string message)
        : base($"{(int)statusCode} {statusCode}: {message}")
    {
        StatusCode = statusCode;
        Reason = reason;
    }

    public KubeApiException()
        : this(HttpStatusCode.InternalServerError, null, "(no body)")
    {
    }

    public KubeApiException(string message)
        : this(HttpStatusCode.InternalServerError, null, message)
    {
    }

    public KubeApiException(string message, Exception innerException)
        : base(message, innerException)
    {
        StatusCode = HttpStatusCode.InternalServerError;
    }

    public HttpStatusCode StatusCode { get; }

    /// <summary>The Status reason, e.g. <c>Expired</c>, <c>NotFound</c>, <c>Forbidden</c>.</summary>
    public string? Reason { get; }
}

/// <summary>One page of a node list.</summary>
internal sealed record NodeListPage(IReadOnlyList<KubeNode> Items, string ResourceVersion, string? Continue, long? RemainingItemCount);

internal enum NodeEventType
{
    Added,
    Modified,
    Deleted,
    Bookmark,
    Error,
}

/// <summary>One watch event: a node (or, for a bookmark, just its resourceVersion), or an ERROR with its Status.</summary>
internal readonly record struct NodeWatchEvent(NodeEventType Type, KubeNode? Node, string ResourceVersion, int ErrorCode, string? ErrorMessage);

/// <summary>
/// The requests flannel makes to the core/v1 API, over KubernetesClient's HTTP pipeline (configuration from a
/// kubeconfig, the pod's service account or a URL; TLS; bearer tokens that rotate, client certificates, exec plugins)
/// with System.Text.Json source-generated readers instead of KubernetesClient's typed models: lists are read as a
/// stream into <see cref="KubeNode"/>s (never whole <c>V1Node</c>s), watches line by line.
/// </summary>
internal sealed class KubeApiClient : IDisposable
{
    private const string NodesPath = "api/v1/nodes";
    private readonly Kubernetes _kubernetes;
    private readonly KubeJson _json;

    public KubeApiClient(KubernetesClientConfiguration configuration, AnnotationNames names)
    {
        _kubernetes = new Kubernetes(configuration);
        _json = new KubeJson(names);
    }

    public Uri BaseUri => _kubernetes.BaseUri;

    /// <summary><c>GET /api/v1/nodes</c>: one page, read from the response stream.</summary>
    public async Task<NodeListPage> ListNodesAsync(string? fieldSelector, string? resourceVersion, int limit, string? continueToken, CancellationToken cancellationToken)
    {
        string uri = NodesPath + Query(
            ("fieldSelector", fieldSelector),
            ("resourceVersion", resourceVersion),
            ("limit", limit > 0 ? limit.ToString(CultureInfo.InvariantCulture) : null),
            ("continue", continueToken));
        using HttpResponseMessage response = await SendAsync(HttpMethod.Get, uri, content: null, cancellationToken).ConfigureAwait(false);
        Stream body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (body.ConfigureAwait(false))
        {
            NodeListDto list = await JsonSerializer.DeserializeAsync(body, _json.NodeList, cancellationToken).ConfigureAwait(false)
                ?? throw new JsonException("the node list is null");
            return new NodeListPage(list.Items ?? [], list.Metadata.ResourceVersion, string.IsNullOrEmpty(list.Metadata.Continue) ? null : list.Metadata.Continue, list.Metadata.RemainingItemCount);
        }
    }

    /// <summary>
    /// <c>GET /api/v1/nodes?watch=true</c> from <paramref name="resourceVersion"/> with bookmarks. Ends when the server
    /// ends the stream (its timeout) or after an ERROR event; throws when the connection breaks.
    /// </summary>
    public async IAsyncEnumerable<NodeWatchEvent> WatchNodesAsync(
        string? fieldSelector, string resourceVersion, int timeoutSeconds, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string uri = NodesPath + Query(
            ("allowWatchBookmarks", "true"),
            ("fieldSelector", fieldSelector),
            ("resourceVersion", resourceVersion),
            ("timeoutSeconds", timeoutSeconds.ToString(CultureInfo.InvariantCulture)),
            ("watch", "true"));
        using HttpResponseMessage response = await SendAsync(HttpMethod.Get, uri, content: null, cancellationToken).ConfigureAwait(false);
        Stream body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (body.ConfigureAwait(false))
        {
            await foreach (WatchEventDto item in ReadLinesAsync(body, cancellationToken).ConfigureAwait(false))
            {
                if (item.Object is not { } obj)
                {
                    throw new JsonException($"a watch event without an object (type \"{item.Type}\")");
                }

                NodeEventType type = item.Type switch
                {
                    "ADDED" => NodeEventType.Added,
                    "MODIFIED" => NodeEventType.Modified,
                    "DELETED" => NodeEventType.Deleted,
                    "BOOKMARK" => NodeEventType.Bookmark,
                    "ERROR" => NodeEventType.Error,
                    _ => throw new JsonException($"unknown watch event type \"{item.Type}\""),
                };
                if (type == NodeEventType.Error)
                {
                    yield return new NodeWatchEvent(type, null, "", obj.Code, $"{obj.Code} {obj.Reason}: {obj.Message}");
                    yield break;
                }

                yield return new NodeWatchEvent(type, type == NodeEventType.Bookmark ? null : obj, obj.ResourceVersion, 0, null);
            }
        }
    }

    /// <summary>
    /// The watch framing: one JSON object per line. Each event is parsed as soon as its newline has arrived
    /// (JsonSerializer's own stream readers wait for a full buffer, which would hold events back for minutes).
    /// </summary>
    private async IAsyncEnumerable<WatchEventDto> ReadLinesAsync(Stream body, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(16 * 1024);
        int start = 0, end = 0;
        try
        {
            while (true)
            {
                int newline = buffer.AsSpan(start, end - start).IndexOf((byte)'\n');
                if (newline >= 0)
                {
                    WatchEventDto? item = ParseLine(buffer.AsSpan(start, newline));
                    start += newline + 1;
                    if (item is not null)
                    {
                        yield return item;
                    }

                    continue;
                }

                if (start > 0)
                {
                    // Move the partial line to the front.
                    buffer.AsSpan(start, end - start).CopyTo(buffer);
                    end -= start;
                    start = 0;
                }

                if (end == buffer.Length)
                {
                    // A line longer than the buffer (a node with many kilobytes of status): grow.
                    byte[] larger = System.Buffers.ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, end).CopyTo(larger);
                    System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                int read = await body.ReadAsync(buffer.AsMemory(end), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    // The server ended the watch; a last line without a newline still counts.
                    if (ParseLine(buffer.AsSpan(0, end)) is { } last)
                    {
                        yield return last;
                    }

                    yield break;
                }

                end += read;
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private WatchEventDto? ParseLine(ReadOnlySpan<byte> line)
    {
        line = line.Trim(" \t\r"u8);
        return line.IsEmpty ? null : JsonSerializer.Deserialize(line, _json.WatchEvent) ?? throw new JsonException("a watch event is null");
    }

    /// <summary><c>GET /api/v1/nodes/{name}</c>.</summary>
    public async Task<KubeNode> GetNodeAsync(string name, CancellationToken cancellationToken)
    {
        using HttpResponseMessage response = await SendAsync(HttpMethod.Get, $"{NodesPath}/{Uri.EscapeDataString(name)}", content: null, cancellationToken).ConfigureAwait(false);
        Stream body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (body.ConfigureAwait(false))
        {
            return await JsonSerializer.DeserializeAsync(body, _json.Node, cancellationToken).ConfigureAwait(false)
                ?? throw new JsonException($"node {name} is null");
        }
    }

    /// <summary><c>GET /api/v1/namespaces/{ns}/pods/{name}</c>: the pod's <c>spec.nodeName</c>.</summary>
    public async Task<string?> GetPodNodeNameAsync(string podNamespace, string podName, CancellationToken cancellationToken)
    {
        string uri = $"api/v1/namespaces/{Uri.EscapeDataString(podNamespace)}/pods/{Uri.EscapeDataString(podName)}";
        using HttpResponseMessage response = await SendAsync(HttpMethod.Get, uri, content: null, cancellationToken).ConfigureAwait(false);
        Stream body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (body.ConfigureAwait(false))
        {
            PodDto? pod = await JsonSerializer.DeserializeAsync(body, _json.Pod, cancellationToken).ConfigureAwait(false);
            return pod?.Spec.NodeName;
        }
    }

    /// <summary><c>PATCH /api/v1/nodes/{name}/status</c> with a strategic-merge patch; the answer (the whole node) is not read.</summary>
    public async Task PatchNodeStatusAsync(string name, string strategicMergePatch, CancellationToken cancellationToken)
    {
        using var content = new StringContent(strategicMergePatch, Encoding.UTF8, "application/strategic-merge-patch+json");
        using HttpResponseMessage response = await SendAsync(HttpMethod.Patch, $"{NodesPath}/{Uri.EscapeDataString(name)}/status", content, cancellationToken).ConfigureAwait(false);
    }

    public void Dispose() => _kubernetes.Dispose();

    /// <summary>One request through KubernetesClient's pipeline: its credentials, its HttpClient (TLS, HTTP/2).</summary>
    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string relativeUri, HttpContent? content, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, new Uri(_kubernetes.BaseUri, relativeUri))
        {
            Content = content,
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionOrLower,
        };
        request.Headers.Accept.ParseAdd("application/json");
        if (_kubernetes.Credentials is { } credentials)
        {
            await credentials.ProcessHttpRequestAsync(request, cancellationToken).ConfigureAwait(false);
        }

        HttpResponseMessage response = await _kubernetes.HttpClient.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            string body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            (string? reason, string message) = StatusOf(body);
            throw new KubeApiException(response.StatusCode, reason, message);
        }
    }

    /// <summary>The Status reason and message of an error body; the body itself (shortened) when it is not a Status (a proxy's page, say).</summary>
    private (string? Reason, string Message) StatusOf(string body)
    {
        if (string.IsNullOrEmpty(body))
        {
            return (null, "(no body)");
        }

        try
        {
            if (JsonSerializer.Deserialize(body, _json.Status) is { Kind: "Status" } status)
            {
                return (status.Reason, status.Message ?? "");
            }
        }
        catch (JsonException)
        {
            // Not JSON at all: show it as it came.
        }

        return (null, body.Length > 500 ? body[..500] : body);
    }

    private static string Query(params (string Name, string? Value)[] parameters)
    {
        var query = new StringBuilder();
        foreach ((string name, string? value) in parameters)
        {
            if (value is null)
            {
                continue;
            }

            query.Append(query.Length == 0 ? '?' : '&').Append(name).Append('=').Append(Uri.EscapeDataString(value));
        }

        return query.ToString();
    }
}
