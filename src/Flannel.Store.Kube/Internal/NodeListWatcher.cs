using System.Net;
using System.Runtime.CompilerServices;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace Flannel.Store.Kube.Internal;

/// <summary>One item of <see cref="NodeListWatcher"/>: the full list (first, and after a re-list) or one change.</summary>
internal readonly record struct NodeWatchItem(IReadOnlyList<V1Node>? Listed, WatchEventType Type, V1Node? Node)
{
    public bool IsList => Listed is not null;
}

/// <summary>
/// A list-then-watch loop over nodes, the part of client-go's reflector flannel relies on: list, watch from the
/// list's resourceVersion with bookmarks, resume from the last seen resourceVersion when the server ends the
/// watch, re-list when the resourceVersion has expired (an ERROR event with Status 410, which KubernetesClient
/// reports to <c>onError</c> and then simply ends the stream), and back off exponentially on failures.
/// </summary>
internal sealed class NodeListWatcher(IKubernetes client, KubeSubnetStoreOptions options, TimeProvider time, ILogger logger)
{
    public async IAsyncEnumerable<NodeWatchItem> WatchAsync(string? fieldSelector, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string? resourceVersion = null;
        TimeSpan backoff = options.WatchMinBackoff;
        string what = fieldSelector ?? "all nodes";
        bool sawEventSinceList = false;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (resourceVersion is null)
            {
                V1NodeList? list = null;
                try
                {
                    list = await client.CoreV1.ListNodeAsync(fieldSelector: fieldSelector, cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (!cancellationToken.IsCancellationRequested)
                {
                    Log.NodeListFailed(logger, what, backoff, Describe(e));
                }

                if (list is null)
                {
                    await Task.Delay(backoff, time, cancellationToken).ConfigureAwait(false);
                    backoff = Next(backoff);
                    continue;
                }

                resourceVersion = list.Metadata?.ResourceVersion ?? "";
                sawEventSinceList = false;
                yield return new NodeWatchItem(list.Items is null ? [] : [.. list.Items], default, null);
            }

            KubernetesException? statusError = null;
            Exception? streamError = null;
            IAsyncEnumerable<(WatchEventType, V1Node)> stream = client.CoreV1.WatchListNodeAsync(
                allowWatchBookmarks: true,
                fieldSelector: fieldSelector,
                resourceVersion: resourceVersion,
                timeoutSeconds: (int)Math.Max(1, options.WatchTimeout.TotalSeconds),
                onError: e =>
                {
                    if (e is KubernetesException k)
                    {
                        statusError ??= k;
                    }
                    else
                    {
                        streamError ??= e;
                    }
                },
                cancellationToken: cancellationToken);

            IAsyncEnumerator<(WatchEventType, V1Node)> events = stream.GetAsyncEnumerator(cancellationToken);
            try
            {
                while (true)
                {
                    bool more;
                    try
                    {
                        more = await events.MoveNextAsync().ConfigureAwait(false);
                    }
                    catch (Exception e) when (!cancellationToken.IsCancellationRequested)
                    {
                        streamError ??= e;
                        break;
                    }

                    if (!more)
                    {
                        break;
                    }

                    (WatchEventType type, V1Node node) = events.Current;
                    if (node?.Metadata?.ResourceVersion is { Length: > 0 } seen)
                    {
                        resourceVersion = seen;
                    }

                    backoff = options.WatchMinBackoff;
                    sawEventSinceList = true;
                    if (type == WatchEventType.Bookmark || node is null)
                    {
                        continue;
                    }

                    yield return new NodeWatchItem(null, type, node);
                }
            }
            finally
            {
                try
                {
                    await events.DisposeAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or HttpRequestException or ObjectDisposedException)
                {
                    // The connection is already gone; nothing to release.
                }
            }

            if (statusError is not null)
            {
                if (statusError.Status?.Code == (int)HttpStatusCode.Gone)
                {
                    // The watch cache no longer has our resourceVersion: whatever happened meanwhile is only
                    // visible by listing again. Re-list at once; this is the normal 410 path, not a failure. Only a
                    // 410 straight after a fresh list (a server that cannot serve its own resourceVersion) backs off.
                    Log.WatchExpired(logger, what, resourceVersion ?? "", statusError.Status.Message ?? "");
                    resourceVersion = null;
                    if (!sawEventSinceList)
                    {
                        await Task.Delay(backoff, time, cancellationToken).ConfigureAwait(false);
                        backoff = Next(backoff);
                    }

                    continue;
                }

                Log.WatchFailed(logger, what, backoff, $"{statusError.Status?.Code} {statusError.Status?.Reason}: {statusError.Status?.Message}");
                resourceVersion = null;
                await Task.Delay(backoff, time, cancellationToken).ConfigureAwait(false);
                backoff = Next(backoff);
                continue;
            }

            if (streamError is not null)
            {
                if (streamError is HttpOperationException { Response.StatusCode: HttpStatusCode.Gone })
                {
                    Log.WatchExpired(logger, what, resourceVersion ?? "", "410 Gone");
                    resourceVersion = null;
                    continue;
                }

                // A dropped connection: resume from the last resourceVersion we saw, after a pause.
                Log.WatchFailed(logger, what, backoff, Describe(streamError));
                await Task.Delay(backoff, time, cancellationToken).ConfigureAwait(false);
                backoff = Next(backoff);
                continue;
            }

            // The server closed the watch (timeoutSeconds or its own limit): resume where we were.
            Log.WatchResumed(logger, what, resourceVersion ?? "");
        }
    }

    private TimeSpan Next(TimeSpan backoff) =>
        backoff * 2 > options.WatchMaxBackoff ? options.WatchMaxBackoff : backoff * 2;

    /// <summary>An API failure in one line: <c>404 NotFound: pods "x" not found</c> (the Status message when the body is one).</summary>
    internal static string Describe(Exception e) => e switch
    {
        HttpOperationException h => $"{(int)h.Response.StatusCode} {h.Response.StatusCode}: {StatusMessage(h.Response.Content)}",
        _ => $"{e.GetType().Name}: {e.Message}",
    };

    private static string StatusMessage(string? body)
    {
        if (string.IsNullOrEmpty(body))
        {
            return "(no body)";
        }

        try
        {
            using System.Text.Json.JsonDocument status = System.Text.Json.JsonDocument.Parse(body);
            if (status.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object
                && status.RootElement.TryGetProperty("message", out System.Text.Json.JsonElement message)
                && message.ValueKind == System.Text.Json.JsonValueKind.String)
            {
                return message.GetString()!;
            }
        }
        catch (System.Text.Json.JsonException)
        {
            // Not a Status object (a proxy's HTML page, say): show it as it came.
        }

        return body.Length > 500 ? body[..500] : body;
    }
}
