using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace Flannel.Store.Kube.Internal;

/// <summary>
/// One item of <see cref="NodeListWatcher.RunAsync"/>: the full list (first, and after a re-list) or one change. The
/// list is the consumer's: it clears it once read, since the watcher holds the item it yielded until it is asked for
/// the next one, and a consumer that yields in turn (the peer watch hands its snapshot to the agent) would otherwise
/// keep every listed node alive until then, past the collection that ends start-up.
/// </summary>
internal readonly record struct NodeWatchItem(List<KubeNode>? Listed, NodeEventType Type, KubeNode? Node)
{
    public bool IsList => Listed is not null;
}

/// <summary>A complete list of nodes and the resourceVersion it is consistent at (where a watch continues from).</summary>
internal sealed record NodeSnapshot(List<KubeNode> Nodes, string ResourceVersion, bool Paginated);

/// <summary>
/// client-go's reflector for nodes, the part flannel relies on, in two steps. <see cref="ListAsync"/> lists the way a
/// reflector does: the first list asks for <c>resourceVersion=0</c> (served from the API server's watch cache, never
/// a quorum read of etcd on every agent's start) with <c>limit</c>, follows <c>continue</c> tokens when the server
/// paginates, and re-lists in full when a continue token has expired. <see cref="WatchAsync"/> watches from a
/// resourceVersion with bookmarks. <see cref="RunAsync"/> combines them: list, watch, resume from the last seen
/// resourceVersion when the server ends the watch, re-list when that resourceVersion has expired (410), and back off
/// exponentially on failures.
/// </summary>
internal sealed class NodeListWatcher(KubeApiClient api, KubeSubnetStoreOptions options, TimeProvider time, ILogger logger)
{
    /// <summary>
    /// Lists all pages of nodes at <paramref name="resourceVersion"/>: <c>"0"</c> = any (the watch cache), <c>""</c> =
    /// the latest (a consistent read), a number = not older than that.
    /// </summary>
    /// <param name="fieldSelector">The field selector, e.g. <c>metadata.name=node-a</c>; null lists every node.</param>
    /// <param name="resourceVersion">The resourceVersion to list at (see above).</param>
    /// <param name="paginate">Send <c>limit</c>. client-go leaves it off for a re-list at a known resourceVersion,
    /// so that the watch cache can answer, unless the server has shown that it paginates (no watch cache).</param>
    /// <param name="cancellationToken">Stops the list.</param>
    public async Task<NodeSnapshot> ListAsync(string? fieldSelector, string resourceVersion, bool paginate, CancellationToken cancellationToken)
    {
        int limit = paginate ? options.ListPageSize : 0;
        NodeListPage page = await api.ListNodesAsync(fieldSelector, resourceVersion, limit, continueToken: null, cancellationToken).ConfigureAwait(false);
        if (page.Continue is null)
        {
            return new NodeSnapshot(page.Items, page.ResourceVersion, Paginated: false);
        }

        List<KubeNode> nodes = [.. page.Items];
        string listedAt = page.ResourceVersion;
        while (page.Continue is { } token)
        {
            try
            {
                // Later pages belong to the first page's snapshot; they take no resourceVersion of their own.
                page = await api.ListNodesAsync(fieldSelector, resourceVersion: null, limit, token, cancellationToken).ConfigureAwait(false);
            }
            catch (KubeApiException e) when (e.StatusCode == HttpStatusCode.Gone)
            {
                // The snapshot the token points into was compacted away: one full list instead (client-go's pager).
                Log.ListContinueExpired(logger, nodes.Count);
                NodeListPage full = await api.ListNodesAsync(fieldSelector, resourceVersion, limit: 0, continueToken: null, cancellationToken).ConfigureAwait(false);
                return new NodeSnapshot(full.Items, full.ResourceVersion, Paginated: true);
            }

            nodes.AddRange(page.Items);
        }

        return new NodeSnapshot(nodes, listedAt, Paginated: true);
    }

    /// <summary>One watch connection from <paramref name="resourceVersion"/>; ends when the server ends it or sends an ERROR.</summary>
    public IAsyncEnumerable<NodeWatchEvent> WatchAsync(string? fieldSelector, string resourceVersion, CancellationToken cancellationToken) =>
        api.WatchNodesAsync(fieldSelector, resourceVersion, (int)Math.Max(1, options.WatchTimeout.TotalSeconds), cancellationToken);

    public async IAsyncEnumerable<NodeWatchItem> RunAsync(string? fieldSelector, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string what = fieldSelector ?? "all nodes";
        TimeSpan backoff = options.WatchMinBackoff;

        // The resourceVersion the next list asks for: "0" first, the last one seen after a watch expired, and ""
        // (a consistent read) when the server could not serve that one.
        string listFrom = "0";
        bool serverPaginates = false;
        string? watchFrom = null;
        bool sawEventSinceList = false;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (watchFrom is null)
            {
                NodeSnapshot? snapshot = null;
                try
                {
                    bool paginate = listFrom is "" or "0" || serverPaginates;
                    snapshot = await ListAsync(fieldSelector, listFrom, paginate, cancellationToken).ConfigureAwait(false);
                }
                catch (KubeApiException e) when (listFrom.Length > 0 && (e.StatusCode == HttpStatusCode.Gone || e.Reason is "Timeout" or "Expired"))
                {
                    // Too old or too new for the watch cache: ask etcd for the latest state instead, at once.
                    Log.NodeListFailed(logger, what, TimeSpan.Zero, e.Message);
                    listFrom = "";
                    continue;
                }
                catch (Exception e) when (!cancellationToken.IsCancellationRequested && IsApiFailure(e))
                {
                    Log.NodeListFailed(logger, what, backoff, Describe(e));
                }

                if (snapshot is null)
                {
                    await Task.Delay(backoff, time, cancellationToken).ConfigureAwait(false);
                    backoff = Next(backoff);
                    continue;
                }

                serverPaginates |= snapshot.Paginated && listFrom == "0";
                watchFrom = snapshot.ResourceVersion;
                sawEventSinceList = false;
                yield return new NodeWatchItem(snapshot.Nodes, default, null);
            }

            string? expired = null;
            Exception? streamError = null;
            string? failure = null;
            IAsyncEnumerator<NodeWatchEvent> events = WatchAsync(fieldSelector, watchFrom, cancellationToken).GetAsyncEnumerator(cancellationToken);
            try
            {
                while (true)
                {
                    bool more;
                    try
                    {
                        more = await events.MoveNextAsync().ConfigureAwait(false);
                    }
                    catch (Exception e) when (!cancellationToken.IsCancellationRequested && IsApiFailure(e))
                    {
                        streamError = e;
                        break;
                    }

                    if (!more)
                    {
                        break;
                    }

                    NodeWatchEvent item = events.Current;
                    if (item.Type == NodeEventType.Error)
                    {
                        if (item.ErrorCode == (int)HttpStatusCode.Gone)
                        {
                            expired = item.ErrorMessage;
                        }
                        else
                        {
                            failure = item.ErrorMessage;
                        }

                        break;
                    }

                    if (item.ResourceVersion.Length > 0)
                    {
                        watchFrom = item.ResourceVersion;
                    }

                    backoff = options.WatchMinBackoff;
                    sawEventSinceList = true;
                    if (item.Type == NodeEventType.Bookmark)
                    {
                        continue;
                    }

                    yield return new NodeWatchItem(null, item.Type, item.Node);
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

            if (expired is not null || streamError is KubeApiException { StatusCode: HttpStatusCode.Gone })
            {
                // The watch cache no longer has our resourceVersion: whatever happened meanwhile is only visible by
                // listing again, not older than what we saw (so the watch cache can answer). Re-list at once; this is
                // the normal 410 path, not a failure. Only a 410 straight after a fresh list (a server that cannot
                // serve its own resourceVersion) backs off.
                Log.WatchExpired(logger, what, watchFrom, expired ?? "410 Gone");
                listFrom = watchFrom;
                watchFrom = null;
                if (!sawEventSinceList)
                {
                    await Task.Delay(backoff, time, cancellationToken).ConfigureAwait(false);
                    backoff = Next(backoff);
                }

                continue;
            }

            if (failure is not null)
            {
                Log.WatchFailed(logger, what, backoff, failure);
                listFrom = watchFrom;
                watchFrom = null;
                await Task.Delay(backoff, time, cancellationToken).ConfigureAwait(false);
                backoff = Next(backoff);
                continue;
            }

            if (streamError is not null)
            {
                // A dropped connection: resume from the last resourceVersion we saw, after a pause.
                Log.WatchFailed(logger, what, backoff, Describe(streamError));
                await Task.Delay(backoff, time, cancellationToken).ConfigureAwait(false);
                backoff = Next(backoff);
                continue;
            }

            // The server closed the watch (timeoutSeconds or its own limit): resume where we were.
            Log.WatchResumed(logger, what, watchFrom);
        }
    }

    private TimeSpan Next(TimeSpan backoff) =>
        backoff * 2 > options.WatchMaxBackoff ? options.WatchMaxBackoff : backoff * 2;

    /// <summary>What a call to the API can fail with, short of cancellation: an API answer, the network, bad JSON.</summary>
    internal static bool IsApiFailure(Exception e) =>
        e is KubeApiException or HttpRequestException or IOException or System.Text.Json.JsonException or TaskCanceledException;

    /// <summary>An API failure in one line: <c>404 NotFound: pods "x" not found</c> (the Status message when the body is one).</summary>
    internal static string Describe(Exception e) => e switch
    {
        KubeApiException k => k.Message,
        _ => $"{e.GetType().Name}: {e.Message}",
    };
}
