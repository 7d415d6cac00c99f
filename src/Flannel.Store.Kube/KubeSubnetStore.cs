using System.Net;
using System.Runtime.CompilerServices;
using Flannel.Configuration;
using Flannel.Store.Kube.Internal;
using Flannel.Subnets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Flannel.Store.Kube;

/// <summary>
/// flannel's <c>--kube-subnet-mgr</c>: this node's lease is its <c>spec.podCIDR(s)</c>, assigned by
/// kube-controller-manager; what the node publishes (backend type and data, public IPs) lives in
/// <c>flannel.alpha.coreos.com/*</c> annotations written through the <c>nodes/status</c> subresource; peers are
/// found by listing and watching all nodes.
/// </summary>
/// <remarks>
/// <para>Where it differs from flannel on purpose: while the node has no podCIDR the store waits and watches
/// instead of failing (<see cref="State"/> says so); lease events fire when any lease-relevant field of an enabled
/// family changes, including the podCIDR (flannel's dual-stack filter drops IPv4-only changes); a peer whose
/// annotations cannot be read is skipped with a warning naming the node and the field, and keeps its last good
/// lease; a peer whose podCIDR changes gets a removal of the old subnet before the new one is added; our own node is
/// never reported as a peer.</para>
/// <para>There is nothing to renew: a Kubernetes lease lasts as long as the node. <see cref="KeepLeaseAsync"/> marks
/// the node's network available (NetworkUnavailable=False, reason FlannelIsUp) and then watches the node, putting
/// our annotations back if someone removes them and handing out a new lease if the podCIDR changes.</para>
/// </remarks>
public sealed class KubeSubnetStore : ISubnetStore, ISubnetStoreStatus, IDisposable
{
    private static readonly TimeSpan LeaseLifetime = TimeSpan.FromHours(24);

    private readonly KubeSubnetStoreOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Func<string, string?> _environment;
    private readonly AnnotationNames _names;
    private readonly Lazy<KubeApiClient> _api;
    private readonly SemaphoreSlim _nodeNameLock = new(1, 1);
    private readonly Lock _stateLock = new();
    private NetworkConfig? _config;
    private string? _nodeName;
    private int _foreignNodeReported;
    private KubeNodeState _state = KubeNodeState.Starting;
    private string _stateDetail = "the lease has not been requested yet";

    /// <summary>Creates the store from validated options (the DI constructor).</summary>
    public KubeSubnetStore(IOptions<KubeSubnetStoreOptions> options, ILogger<KubeSubnetStore> logger, TimeProvider timeProvider)
        : this(options?.Value!, logger, timeProvider, Environment.GetEnvironmentVariable)
    {
    }

    internal KubeSubnetStore(
        KubeSubnetStoreOptions options, ILogger logger, TimeProvider timeProvider, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(environment);
        _options = options;
        _logger = logger;
        _time = timeProvider;
        _environment = environment;
        _names = AnnotationNames.Create(options.AnnotationPrefix);

        // No client work (kubeconfig, TLS, HTTP) until the first call that talks to the API.
        _api = new Lazy<KubeApiClient>(() => KubeClientFactory.Create(options, _names));
    }

    /// <summary>Raised when <see cref="State"/> changes (for example while waiting for a podCIDR).</summary>
    public event EventHandler<KubeNodeStateChangedEventArgs>? StateChanged;

    /// <summary>The annotation names in use (after prefix normalisation).</summary>
    public AnnotationNames Annotations => _names;

    /// <summary>This node's name once known (after the first call that needs it).</summary>
    public string? NodeName => _nodeName;

    /// <summary>Where this node's lease stands; the agent shows anything but <see cref="KubeNodeState.Ready"/> as not ready.</summary>
    public KubeNodeState State
    {
        get
        {
            lock (_stateLock)
            {
                return _state;
            }
        }
    }

    /// <summary>A one-line explanation of <see cref="State"/>, for logs and the readiness endpoint.</summary>
    public string StateDetail
    {
        get
        {
            lock (_stateLock)
            {
                return _stateDetail;
            }
        }
    }

    /// <summary>
    /// <see cref="StateDetail"/> while the node is missing, has no podCIDR yet, or is misconfigured; null once the lease
    /// is ready (and during start-up, before the agent has asked for it). The agent folds this into <c>/readyz</c>.
    /// </summary>
    public string? NotReadyReason
    {
        get
        {
            lock (_stateLock)
            {
                return _state is KubeNodeState.Ready or KubeNodeState.Starting ? null : _stateDetail;
            }
        }
    }

    private KubeApiClient Api => _api.Value;

    private NodeListWatcher Watcher => new(Api, _options, _time, _logger);

    /// <inheritdoc />
    /// <remarks>Reads net-conf.json and only parses it, as flannel's kube mode does (no SubnetLen/Min/Max checks: the
    /// subnets are kube-controller-manager's).</remarks>
    public async ValueTask<NetworkConfig> GetNetworkConfigAsync(CancellationToken cancellationToken)
    {
        if (_config is { } cached)
        {
            return cached;
        }

        string text;
        try
        {
            text = await File.ReadAllTextAsync(_options.NetConfigPath, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new NetworkConfigException($"failed to read net conf: {e.Message}", e);
        }

        NetworkConfig config;
        try
        {
            config = NetworkConfig.Parse(text);
        }
        catch (NetworkConfigException e)
        {
            throw new NetworkConfigException($"error parsing subnet config: {e.Message}", e.Field, e.Value, e);
        }

        _config = config;
        return config;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Kube mode: <see cref="NodeHints.PublicIP"/>/<see cref="NodeHints.PublicIPv6"/> come from the user's
    /// <c>node-public-ip(v6)</c> annotations, and <see cref="NodeHints.PreviousAttributes"/> from the annotations
    /// this node published before (so the VXLAN backend keeps its VtepMAC across restarts). A missing node or an
    /// unreadable value gives no hint, with a warning; it never fails the start.
    /// </remarks>
    public async ValueTask<NodeHints> GetNodeHintsAsync(IPAddress? publicIP, CancellationToken cancellationToken)
    {
        string name = await EnsureNodeNameAsync(cancellationToken).ConfigureAwait(false);
        KubeNode node;
        try
        {
            node = await Api.GetNodeAsync(name, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && NodeListWatcher.IsApiFailure(e))
        {
            Log.HintsUnavailable(_logger, name, NodeListWatcher.Describe(e));
            return NodeHints.None;
        }

        return new NodeHints
        {
            PublicIP = ReadHintAddress(node, _names.NodePublicIP, System.Net.Sockets.AddressFamily.InterNetwork),
            PublicIPv6 = ReadHintAddress(node, _names.NodePublicIPv6, System.Net.Sockets.AddressFamily.InterNetworkV6),
            PreviousAttributes = ReadPreviousAttributes(node),
        };
    }

    /// <inheritdoc />
    /// <remarks>
    /// The lease is the node's podCIDR(s). While the node does not exist or has no podCIDR, this waits, watching the
    /// node, with <see cref="State"/> saying why; it fails only when the podCIDR cannot be used (outside the
    /// network: flannel's error text) or the node cannot be patched for 30 s.
    /// </remarks>
    public async ValueTask<Lease> AcquireLeaseAsync(LeaseRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        NetworkConfig config = await GetNetworkConfigAsync(cancellationToken).ConfigureAwait(false);
        string name = await EnsureNodeNameAsync(cancellationToken).ConfigureAwait(false);
        KubeNode node = await WaitForPodCidrAsync(name, cancellationToken).ConfigureAwait(false);

        Lease lease;
        try
        {
            lease = BuildOwnLease(node, config, request.Attributes);
        }
        catch (KubeSubnetStoreException e)
        {
            SetState(KubeNodeState.Misconfigured, e.Message);
            throw;
        }

        await PublishAnnotationsAsync(node, request.Attributes, cancellationToken).ConfigureAwait(false);
        SetState(KubeNodeState.Ready, $"node {name} holds {lease.Key}");
        return lease;
    }

    /// <inheritdoc />
    /// <remarks>Nothing to renew in Kubernetes: returns the lease with a fresh 24 h expiration, as flannel sets it.</remarks>
    public ValueTask<Lease> RenewLeaseAsync(Lease lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        return ValueTask.FromResult(lease with { Expiration = _time.GetUtcNow() + LeaseLifetime });
    }

    /// <inheritdoc />
    /// <remarks>
    /// flannel's <c>CompleteLease</c>: patches NetworkUnavailable=False (reason FlannelIsUp) unless
    /// <see cref="KubeSubnetStoreOptions.SetNodeNetworkUnavailable"/> is off, then watches this node until cancelled:
    /// it restores our annotations if they are removed or changed, waits (not ready) if the node is deleted or loses
    /// its podCIDR, and yields a new lease if the podCIDR changes. It yields nothing while the lease stays the same.
    /// </remarks>
    public async IAsyncEnumerable<Lease> KeepLeaseAsync(Lease lease, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        NetworkConfig config = await GetNetworkConfigAsync(cancellationToken).ConfigureAwait(false);
        string name = await EnsureNodeNameAsync(cancellationToken).ConfigureAwait(false);
        bool conditionPending = _options.SetNodeNetworkUnavailable;
        Lease current = lease;

        await foreach (NodeWatchItem item in Watcher.RunAsync(OwnNodeSelector(name), cancellationToken).ConfigureAwait(false))
        {
            if (!TryReadOwnNode(item, name, out KubeNode? node))
            {
                continue;
            }

            if (node is null)
            {
                if (State != KubeNodeState.WaitingForNode)
                {
                    Log.OwnNodeDeleted(_logger, name);
                    SetState(KubeNodeState.WaitingForNode, $"node {name} does not exist");
                }

                // A re-registered node starts without our condition; set it again once it is back.
                conditionPending = _options.SetNodeNetworkUnavailable;
                continue;
            }

            if (!node.HasPodCidr)
            {
                if (State != KubeNodeState.WaitingForPodCidr)
                {
                    Log.WaitingForPodCidr(_logger, name);
                    SetState(KubeNodeState.WaitingForPodCidr, $"node {name} has no podCIDR yet");
                }

                continue;
            }

            Lease next;
            try
            {
                next = BuildOwnLease(node, config, current.Attributes);
                await PublishAnnotationsAsync(node, current.Attributes, cancellationToken).ConfigureAwait(false);
                if (conditionPending)
                {
                    await PatchStatusWithRetryAsync(name, NodePatches.NetworkUnavailableFalse(_time.GetUtcNow()), cancellationToken).ConfigureAwait(false);
                    Log.NetworkAvailable(_logger, name);
                    conditionPending = false;
                }
            }
            catch (KubeSubnetStoreException e)
            {
                // Keep watching: the next change of the node (or the next resync) gets another try.
                if (State != KubeNodeState.Misconfigured || StateDetail != e.Message)
                {
                    Log.OwnNodeMisconfigured(_logger, name, e.Message);
                    SetState(KubeNodeState.Misconfigured, e.Message);
                }

                continue;
            }

            SetState(KubeNodeState.Ready, $"node {name} holds {next.Key}");
            if (!next.HasSameSubnets(current))
            {
                Log.OwnPodCidrChanged(_logger, name, current.Key, next.Key);
                current = next;
                yield return next;
            }
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// flannel has no revocation in kube mode. Here it removes the <c>kube-subnet-manager</c> annotation, so that
    /// every flannel peer stops treating the node as a lease holder, and keeps the backend annotations (the VtepMAC
    /// survives a later start).
    /// </remarks>
    public async ValueTask RevokeLeaseAsync(Lease lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        string name = await EnsureNodeNameAsync(cancellationToken).ConfigureAwait(false);
        string body = NodePatches.AnnotationsPatch([new KeyValuePair<string, string?>(_names.KubeSubnetManager, null)]);
        await PatchStatusWithRetryAsync(name, body, cancellationToken).ConfigureAwait(false);
        Log.LeaseRevoked(_logger, name);
        SetState(KubeNodeState.Starting, $"node {name} gave its lease back");
    }

    /// <inheritdoc />
    /// <remarks>
    /// Lists all nodes, then watches them with bookmarks. Only nodes annotated <c>kube-subnet-manager: "true"</c>
    /// count; this node is never included. An expired watch (410) or a re-list yields a new snapshot; a dropped
    /// connection is resumed from the last resourceVersion after a backoff.
    /// </remarks>
    public async IAsyncEnumerable<LeaseWatchResult> WatchLeasesAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        NetworkConfig config = await GetNetworkConfigAsync(cancellationToken).ConfigureAwait(false);
        string self = await EnsureNodeNameAsync(cancellationToken).ConfigureAwait(false);
        PeerLeaseReader reader = new(_names, config.EnableIPv4, config.EnableIPv6);
        Dictionary<string, PeerState> peers = new(StringComparer.Ordinal);

        await foreach (NodeWatchItem item in Watcher.RunAsync(fieldSelector: null, cancellationToken).ConfigureAwait(false))
        {
            if (item.IsList)
            {
                HashSet<string> present = new(item.Listed!.Count, StringComparer.Ordinal);
                peers.EnsureCapacity(item.Listed.Count); // sized for the list, not grown by doubling
                foreach (KubeNode node in item.Listed!)
                {
                    if (node.Name.Length == 0 || node.Name == self)
                    {
                        continue;
                    }

                    present.Add(node.Name);
                    ApplyPeer(reader, node, peers, events: null);
                }

                foreach (string gone in peers.Keys.Where(k => !present.Contains(k)).ToList())
                {
                    peers.Remove(gone);
                }

                item.Listed.Clear();

                yield return LeaseWatchResult.FromSnapshot([.. peers.Values.Where(p => p.Lease is not null).Select(p => p.Lease!)]);
                continue;
            }

            KubeNode changed = item.Node!;
            if (changed.Name.Length == 0 || changed.Name == self)
            {
                continue;
            }

            List<LeaseEvent> events = [];
            if (item.Type == NodeEventType.Deleted)
            {
                if (peers.Remove(changed.Name, out PeerState? removed) && removed.Lease is not null)
                {
                    events.Add(new LeaseEvent(LeaseEventType.Removed, removed.Lease));
                }
            }
            else
            {
                ApplyPeer(reader, changed, peers, events);
            }

            if (events.Count > 0)
            {
                yield return LeaseWatchResult.FromEvents(events);
            }
        }
    }

    /// <summary>Disposes the API client when this store created it.</summary>
    public void Dispose()
    {
        if (_api.IsValueCreated)
        {
            _api.Value.Dispose();
        }

        _nodeNameLock.Dispose();
    }

    /// <summary>
    /// Folds one node into the peer leases: Added when the lease is new or any lease-relevant field of an enabled
    /// family changed (the fixed dual-stack filter: leases compare by value), a Removed of the old subnet first when
    /// the podCIDR moved, and Removed when the node stops being managed. An update that leaves every field flannel reads
    /// as it was (a kubelet heartbeat, a label, a foreign annotation) reads back the lease it already has, and yields
    /// nothing. A node that cannot be read keeps its last good lease, with one warning per distinct problem.
    /// </summary>
    private void ApplyPeer(PeerLeaseReader reader, KubeNode node, Dictionary<string, PeerState> peers, List<LeaseEvent>? events)
    {
        string name = node.Name;
        peers.TryGetValue(name, out PeerState? known);
        if (!reader.IsManaged(node))
        {
            peers.Remove(name);
            if (known?.Lease is { } unmanaged)
            {
                events?.Add(new LeaseEvent(LeaseEventType.Removed, unmanaged));
            }

            return;
        }

        if (!reader.TryRead(node, out Lease? lease, out string? problem))
        {
            if (known?.Problem != problem)
            {
                Log.NodeSkipped(_logger, name, problem);
                peers[name] = new PeerState(known?.Lease, problem);
            }

            return;
        }

        if (known?.Lease is { } old)
        {
            if (old == lease)
            {
                // Nothing flannel reads changed: keep the instances the agent already holds.
                if (known.Problem is not null)
                {
                    peers[name] = known with { Problem = null };
                }

                return;
            }

            peers[name] = new PeerState(lease, Problem: null);
            if (!old.HasSameSubnets(lease))
            {
                events?.Add(new LeaseEvent(LeaseEventType.Removed, old));
            }
        }
        else
        {
            peers[name] = new PeerState(lease, Problem: null);
        }

        events?.Add(new LeaseEvent(LeaseEventType.Added, lease));
    }

    /// <summary>
    /// What the peer watch keeps per node: its last good lease and its current problem. Not the node: at 5,000 nodes
    /// its strings (pod CIDRs, timestamps, annotation values) held about 3.5 MB that the lease already says.
    /// </summary>
    private sealed record PeerState(Lease? Lease, string? Problem);

    private async Task<string> EnsureNodeNameAsync(CancellationToken cancellationToken)
    {
        if (_nodeName is { } known)
        {
            return known;
        }

        await _nodeNameLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_nodeName is null)
            {
                (string name, string source) = await KubeClientFactory.ResolveNodeNameAsync(Api, _options.NodeName, _environment, cancellationToken).ConfigureAwait(false);
                Log.NodeNameResolved(_logger, name, source);
                _nodeName = name;
            }

            return _nodeName;
        }
        finally
        {
            _nodeNameLock.Release();
        }
    }

    private async Task<KubeNode> WaitForPodCidrAsync(string name, CancellationToken cancellationToken)
    {
        await foreach (NodeWatchItem item in Watcher.RunAsync(OwnNodeSelector(name), cancellationToken).ConfigureAwait(false))
        {
            if (!TryReadOwnNode(item, name, out KubeNode? node))
            {
                continue;
            }

            if (node is null)
            {
                if (State != KubeNodeState.WaitingForNode)
                {
                    Log.WaitingForNode(_logger, name);
                    SetState(KubeNodeState.WaitingForNode, $"node {name} does not exist yet");
                }
            }
            else if (!node.HasPodCidr)
            {
                if (State != KubeNodeState.WaitingForPodCidr)
                {
                    Log.WaitingForPodCidr(_logger, name);
                    SetState(KubeNodeState.WaitingForPodCidr, $"waiting for node {name} to be assigned a podCIDR");
                }
            }
            else
            {
                Log.PodCidrAssigned(_logger, name, node.Spec.PodCidrs is { Count: > 0 } ? node.Spec.PodCidrs : node.Spec.PodCidr);
                return node;
            }
        }

        // The watch only ends by cancellation.
        cancellationToken.ThrowIfCancellationRequested();
        throw new InvalidOperationException("The node watch ended unexpectedly.");
    }

    private static string OwnNodeSelector(string name) => $"metadata.name={name}";

    /// <summary>
    /// Reads this node from one item of the own-node watch: <paramref name="node"/> is null when the node is absent or
    /// was deleted. The watch asks for <c>metadata.name=&lt;node&gt;</c>, but a proxy or a faulty server may send
    /// other nodes' events anyway; taking one of those as ours would hand out that node's podCIDR as our lease. Such
    /// events are ignored (false) and logged once.
    /// </summary>
    private bool TryReadOwnNode(NodeWatchItem item, string name, out KubeNode? node)
    {
        if (item.IsList)
        {
            node = null;
            foreach (KubeNode listed in item.Listed!)
            {
                if (listed.Name == name)
                {
                    node = listed;
                }
                else
                {
                    ReportForeignNode(name, listed.Name);
                }
            }

            return true;
        }

        if (item.Node!.Name != name)
        {
            ReportForeignNode(name, item.Node.Name);
            node = null;
            return false;
        }

        node = item.Type == NodeEventType.Deleted ? null : item.Node;
        return true;
    }

    private void ReportForeignNode(string name, string? other)
    {
        if (Interlocked.Exchange(ref _foreignNodeReported, 1) == 0)
        {
            Log.ForeignNodeOnOwnWatch(_logger, name, other ?? "(no name)");
        }
    }

    /// <summary>The lease for this node's podCIDR(s), checked against the network config with flannel's error texts.</summary>
    private Lease BuildOwnLease(KubeNode node, NetworkConfig config, LeaseAttributes attributes)
    {
        string name = node.Name;
        IPNetwork? cidr4, cidr6;
        try
        {
            NodeFields.TryGetPodCidrs(node, out cidr4, out cidr6);
        }
        catch (FormatException e)
        {
            throw new KubeSubnetStoreException(e.Message, e);
        }

        IPNetwork? subnet = null, ipv6Subnet = null;
        if (config.EnableIPv4)
        {
            if (cidr4 is not { } v4)
            {
                throw new KubeSubnetStoreException(
                    $"node \"{name}\" has no IPv4 PodCIDR (podCIDRs \"{NodeFields.DescribePodCidrs(node)}\") but the flannel net config enables IPv4");
            }

            if (config.Network is not { } network || !NodeFields.Contains(network, v4))
            {
                throw new KubeSubnetStoreException(
                    $"subnet \"{config.Network?.ToString() ?? "0.0.0.0/0"}\" specified in the flannel net config doesn't contain \"{v4}\" PodCIDR of the \"{name}\" node");
            }

            subnet = v4;
        }

        // Only vxlan, host-gw and wireguard carry an IPv6 lease in flannel's kube mode.
        bool dualStackBackend = attributes.BackendType is "vxlan" or "host-gw" or "wireguard";
        if (config.EnableIPv6 && dualStackBackend)
        {
            if (cidr6 is not { } v6)
            {
                throw new KubeSubnetStoreException(
                    $"node \"{name}\" has no IPv6 PodCIDR (podCIDRs \"{NodeFields.DescribePodCidrs(node)}\") but the flannel net config enables IPv6");
            }

            if (config.IPv6Network is not { } network6 || !NodeFields.Contains(network6, v6))
            {
                throw new KubeSubnetStoreException(
                    $"subnet \"{config.IPv6Network?.ToString() ?? "::/0"}\" specified in the flannel net config doesn't contain \"{v6}\" IPv6 PodCIDR of the \"{name}\" node");
            }

            ipv6Subnet = v6;
        }

        return new Lease
        {
            Subnet = subnet,
            IPv6Subnet = ipv6Subnet,
            Attributes = attributes,
            Expiration = _time.GetUtcNow() + LeaseLifetime,
            Revision = long.TryParse(node.ResourceVersion, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long rv) ? rv : 0,
            CreateRevision = node.CreationOrder,
        };
    }

    private async Task PublishAnnotationsAsync(KubeNode node, LeaseAttributes attributes, CancellationToken cancellationToken)
    {
        string name = node.Name;
        List<(string Annotation, string Value)> overrides = [];
        SortedDictionary<string, string> changed = NodePatches.ChangedAnnotations(node, _names, attributes, overrides);
        if (changed.Count == 0)
        {
            Log.AnnotationsUpToDate(_logger, name);
            return;
        }

        foreach ((string annotation, string value) in overrides)
        {
            string target = annotation == _names.PublicIPOverwrite ? _names.PublicIP : _names.PublicIPv6;
            if (changed.ContainsKey(target))
            {
                Log.PublicIPOverridden(_logger, value, annotation);
            }
        }

        string body = NodePatches.AnnotationsPatch(changed.Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value)));
        await PatchStatusWithRetryAsync(name, body, cancellationToken).ConfigureAwait(false);
        Log.AnnotationsPatched(_logger, name, body);
    }

    /// <summary>
    /// A strategic-merge patch of <c>nodes/{name}/status</c>, retried with a backoff (0.5 s doubling up to
    /// <see cref="KubeSubnetStoreOptions.PatchRetryInterval"/>) for up to <see cref="KubeSubnetStoreOptions.PatchRetryTimeout"/>,
    /// then flannel's "timeout contacting kube-api" error.
    /// </summary>
    private async Task PatchStatusWithRetryAsync(string name, string body, CancellationToken cancellationToken)
    {
        DateTimeOffset deadline = _time.GetUtcNow() + _options.PatchRetryTimeout;
        TimeSpan delay = TimeSpan.FromMilliseconds(500) < _options.PatchRetryInterval ? TimeSpan.FromMilliseconds(500) : _options.PatchRetryInterval;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                await Api.PatchNodeStatusAsync(name, body, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && NodeListWatcher.IsApiFailure(e))
            {
                string error = NodeListWatcher.Describe(e);
                if (e is KubeApiException { StatusCode: HttpStatusCode.Forbidden })
                {
                    error += " (the service account needs the 'patch' verb on 'nodes/status'; see deploy/kube-flannel.yml)";
                }

                if (_time.GetUtcNow() + delay > deadline)
                {
                    throw new KubeSubnetStoreException($"timeout contacting kube-api, failed to patch node \"{name}\". Error: {error}", e);
                }

                Log.PatchRetry(_logger, name, attempt, delay, error);
                await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
                delay = delay * 2 < _options.PatchRetryInterval ? delay * 2 : _options.PatchRetryInterval;
            }
        }
    }

    private IPAddress? ReadHintAddress(KubeNode node, string annotation, System.Net.Sockets.AddressFamily family)
    {
        string? text = NodeFields.Annotation(node, annotation);
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        if (NodeFields.TryParseAddress(text, family, out IPAddress? address))
        {
            return address;
        }

        string kind = family == System.Net.Sockets.AddressFamily.InterNetwork ? "IPv4" : "IPv6";
        Log.BadHintAnnotation(_logger, node.Name, annotation, $"\"{text}\" is not an {kind} address");
        return null;
    }

    private LeaseAttributes? ReadPreviousAttributes(KubeNode node)
    {
        string? backendType = NodeFields.Annotation(node, _names.BackendType);
        string? data4 = ReadPreviousData(node, _names.BackendData);
        string? data6 = ReadPreviousData(node, _names.BackendV6Data);
        if (string.IsNullOrEmpty(backendType) && data4 is null && data6 is null)
        {
            return null;
        }

        NodeFields.TryParseAddress(NodeFields.Annotation(node, _names.PublicIP), System.Net.Sockets.AddressFamily.InterNetwork, out IPAddress? publicIP);
        NodeFields.TryParseAddress(NodeFields.Annotation(node, _names.PublicIPv6), System.Net.Sockets.AddressFamily.InterNetworkV6, out IPAddress? publicIPv6);
        Log.PreviousAttributesFound(_logger, node.Name, backendType ?? "");
        return new LeaseAttributes
        {
            PublicIP = publicIP ?? IPAddress.Any,
            PublicIPv6 = publicIPv6,
            BackendType = string.IsNullOrEmpty(backendType) ? null : backendType,
            BackendData = data4,
            BackendV6Data = data6,
        };
    }

    private string? ReadPreviousData(KubeNode node, string annotation)
    {
        string? text = NodeFields.Annotation(node, annotation);
        if (string.IsNullOrEmpty(text) || text == "null")
        {
            return null;
        }

        if (NodeFields.IsJson(text))
        {
            return text;
        }

        Log.BadHintAnnotation(_logger, node.Name, annotation, $"\"{text}\" is not valid JSON");
        return null;
    }

    private void SetState(KubeNodeState state, string detail)
    {
        lock (_stateLock)
        {
            if (_state == state && _stateDetail == detail)
            {
                return;
            }

            _state = state;
            _stateDetail = detail;
        }

        StateChanged?.Invoke(this, new KubeNodeStateChangedEventArgs(state, detail));
    }
}
