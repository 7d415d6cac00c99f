using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using k8s;
using k8s.Authentication;
using k8s.Exceptions;

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
internal sealed record NodeListPage(List<KubeNode> Items, string ResourceVersion, string? Continue, long? RemainingItemCount);

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
/// The requests flannel makes to the core/v1 API, over an HTTP pipeline built as KubernetesClient builds it (configuration from a
/// kubeconfig, the pod's service account or a URL; TLS; bearer tokens that rotate, client certificates, exec plugins)
/// with System.Text.Json source-generated readers instead of KubernetesClient's typed models: lists are read as a
/// stream into <see cref="KubeNode"/>s (never whole <c>V1Node</c>s), watches line by line.
/// </summary>
internal sealed class KubeApiClient : IDisposable
{
    private const string NodesPath = "api/v1/nodes";
    private readonly SocketsHttpHandler _handler;
    private readonly HttpClient _http;
    private readonly ServiceClientCredentials? _credentials;
    private readonly string? _tlsServerName;
    private readonly Version _httpVersion;
    private readonly KubeJson _json;

    /// <summary>
    /// Builds the HTTP pipeline the way KubernetesClient's <c>Kubernetes</c> constructor does (21.x: the same
    /// <see cref="SocketsHttpHandler"/> settings, the configuration's CA, TLS server name, client certificate,
    /// credentials, user agent and HTTP/2 choice) from KubernetesClient's public pieces, without constructing
    /// <c>Kubernetes</c> itself: its constructor reads <see cref="KubernetesClientConfiguration.JsonSerializerOptions"/>,
    /// which roots KubernetesClient's source-generated JSON context for every API model. In a native flanneld that
    /// was 16 MB of the binary and about 11 MiB of resident type data, for models flannel never reads.
    /// </summary>
    public KubeApiClient(KubernetesClientConfiguration configuration, AnnotationNames names)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        BaseUri = BaseUriOf(configuration.Host);
        _handler = new SocketsHttpHandler
        {
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            KeepAlivePingDelay = TimeSpan.FromMinutes(3),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(30),
            EnableMultipleHttp2Connections = true,
        };
        _handler.SslOptions.ClientCertificates = [];
        configuration.FirstMessageHandlerSetup?.Invoke(_handler);
        if (BaseUri.Scheme == Uri.UriSchemeHttps)
        {
            if (configuration.SkipTlsVerify)
            {
                // The kubeconfig's insecure-skip-tls-verify: the operator asked for it, as kubectl honours it.
#pragma warning disable CA5359
                _handler.SslOptions.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
#pragma warning restore CA5359
            }
            else if (configuration.SslCaCerts is { } caCerts)
            {
                X509Certificate2Collection trusted = [];
                foreach (X509Certificate2 certificate in caCerts)
                {
                    trusted.Add(X509CertificateLoader.LoadCertificate(certificate.RawData));
                }

                _handler.SslOptions.RemoteCertificateValidationCallback = (sender, certificate, chain, errors) =>
                    Kubernetes.CertificateValidationCallBack(sender, trusted, certificate!, chain!, errors);
            }
        }

        _credentials = Kubernetes.CreateCredentials(configuration);
        if (ClientCertificateOf(configuration) is { } clientCertificate)
        {
            _handler.SslOptions.ClientCertificates.Add(clientCertificate);
            _handler.SslOptions.LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCertificate;
        }

        _http = new HttpClient(_handler, disposeHandler: false) { Timeout = Timeout.InfiniteTimeSpan };
        if (!string.IsNullOrWhiteSpace(configuration.UserAgent))
        {
            _http.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", configuration.UserAgent);
        }

        _tlsServerName = string.IsNullOrWhiteSpace(configuration.TlsServerName) ? null : configuration.TlsServerName;
        _httpVersion = configuration.DisableHttp2 ? HttpVersion.Version11 : HttpVersion.Version20;
        _json = new KubeJson(names);
    }

    /// <summary>The API server's URL, ending in '/' so that relative paths append to it.</summary>
    public Uri BaseUri { get; }

    /// <summary>
    /// The client certificate of the configuration (kubeconfig <c>client-certificate(-data)</c> +
    /// <c>client-key(-data)</c>, PEM; a file wins over inline data), or null when either half is missing. The
    /// library's own loader is internal in 21.x.
    /// </summary>
    private static X509Certificate2? ClientCertificateOf(KubernetesClientConfiguration configuration)
    {
        string? certificate = PemOf(configuration.ClientCertificateFilePath, configuration.ClientCertificateData);
        string? key = PemOf(configuration.ClientKeyFilePath, configuration.ClientCertificateKeyData);
        return certificate is null || key is null ? null : X509Certificate2.CreateFromPem(certificate, key);

        static string? PemOf(string? file, string? base64) =>
            !string.IsNullOrWhiteSpace(file) ? File.ReadAllText(file)
            : !string.IsNullOrWhiteSpace(base64) ? Encoding.UTF8.GetString(Convert.FromBase64String(base64))
            : null;
    }

    /// <summary>KubernetesClient's checks and errors for the configuration's server URL.</summary>
    private static Uri BaseUriOf(string? host)
    {
        if (string.IsNullOrWhiteSpace(host))
        {
            throw new KubeConfigException("Host url must be set");
        }

        try
        {
            string absolute = new Uri(host).AbsoluteUri;
            return new Uri(absolute.EndsWith('/') ? absolute : absolute + "/");
        }
        catch (UriFormatException e)
        {
            throw new KubeConfigException("Bad host url", e);
        }
    }

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

    public void Dispose()
    {
        _http.Dispose();
        _handler.Dispose();
    }

    /// <summary>One request through the pipeline: credentials (tokens that rotate, exec plugins), TLS, HTTP/2.</summary>
    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string relativeUri, HttpContent? content, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, new Uri(BaseUri, relativeUri))
        {
            Content = content,
            Version = _httpVersion,
            VersionPolicy = HttpVersionPolicy.RequestVersionOrLower,
        };
        request.Headers.Accept.ParseAdd("application/json");
        if (_credentials is { } credentials)
        {
            await credentials.ProcessHttpRequestAsync(request, cancellationToken).ConfigureAwait(false);
        }

        if (_tlsServerName is not null)
        {
            request.Headers.Host = _tlsServerName;
        }

        HttpResponseMessage response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
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
