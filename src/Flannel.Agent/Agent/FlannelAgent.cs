using System.Net;
using System.Runtime.CompilerServices;
using Flannel.Backends;
using Flannel.Configuration;
using Flannel.Agent.Health;
using Flannel.Agent.Metrics;
using Flannel.Agent.Probing;
using Flannel.Netlink;
using Flannel.Agent.InterfaceSelection;
using Flannel.SubnetEnv;
using Flannel.Subnets;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Flannel.Agent;

/// <summary>
/// One node's flannel agent: flanneld's main loop as a <see cref="BackgroundService"/>.
/// </summary>
/// <remarks>
/// Startup follows flanneld (compat 8.2): network config (retried with backoff while the store is unreachable) →
/// external interface and public IP → backend registration → lease acquisition (reusing the subnet from the previous
/// subnet.env) → the lease on the backend's device → masquerade and forward rules → subnet.env → ready. Then, in
/// parallel until stopped: the backend programs remote leases from the store's watch (the own lease filtered out,
/// the watch restarted with backoff when it fails), the store keeps the lease alive (a changed lease reprograms the
/// node), and the traffic rules are resynchronised. Stopping leaves the data plane (device, routes, rules,
/// subnet.env, lease) in place, as flanneld does, so a restart does not interrupt pod traffic.
/// </remarks>
public sealed partial class FlannelAgent : BackgroundService
{
    private readonly FlannelAgentOptions _options;
    private readonly ISubnetStore _store;
    private readonly IReadOnlyList<IBackend> _backends;
    private readonly INetlink _netlink;
    private readonly IAgentTrafficRules? _trafficRules;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<FlannelAgent> _logger;
    private readonly FlannelMetrics _metrics;
    private readonly FlannelMetrics.AgentGauges _gauges;
    private readonly FlannelHealth _health;
    private Lease? _ownLease;
    private RemoteLeaseTracker? _tracker;
    private NetworkConfig? _config;
    private INetwork? _network;
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _snapshotProgrammed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Creates the agent from its services (normally resolved from DI).</summary>
    /// <param name="options">The agent's options.</param>
    /// <param name="store">The subnet store, bound to this node.</param>
    /// <param name="backends">The registered backends; the config's <c>Backend.Type</c> picks one.</param>
    /// <param name="netlink">Netlink bound to this node's network namespace.</param>
    /// <param name="health">The process health, where this agent registers its readiness.</param>
    /// <param name="metrics">The metrics.</param>
    /// <param name="timeProvider">Time.</param>
    /// <param name="logger">The logger.</param>
    /// <param name="trafficRules">The masquerade/forward rule manager, or null when the host manages no rules.</param>
    /// <param name="storeStatus">
    /// What the store reports about its health, when it is not the store itself that implements
    /// <see cref="ISubnetStoreStatus"/> (a host-side adapter); folded into readiness.
    /// </param>
    /// <param name="echoProber">
    /// Sends the peer probes (registered by <c>UseFabricProbes</c>); null: no probes, and the status shows none.
    /// </param>
    /// <param name="fabricMetrics">The probe instruments, or null for none.</param>
    public FlannelAgent(
        IOptions<FlannelAgentOptions> options,
        ISubnetStore store,
        IEnumerable<IBackend> backends,
        INetlink netlink,
        FlannelHealth health,
        FlannelMetrics metrics,
        TimeProvider timeProvider,
        ILogger<FlannelAgent> logger,
        IAgentTrafficRules? trafficRules = null,
        ISubnetStoreStatus? storeStatus = null,
        IEchoProber? echoProber = null,
        FabricMetrics? fabricMetrics = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(backends);
        ArgumentNullException.ThrowIfNull(netlink);
        ArgumentNullException.ThrowIfNull(health);
        ArgumentNullException.ThrowIfNull(metrics);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);
        _options = options.Value;
        _store = store;
        _backends = [.. backends];
        _netlink = netlink;
        _trafficRules = trafficRules;
        _timeProvider = timeProvider;
        _logger = logger;
        _metrics = metrics;
        _health = health;
        Readiness = health.Register(_options.Name);
        _gauges = metrics.RegisterAgent(_options.Name, timeProvider);
        if ((storeStatus ?? store as ISubnetStoreStatus) is ISubnetStoreStatus status)
        {
            Readiness.SetStoreStatus(() => status.NotReadyReason);
        }

        CreateProber(echoProber, fabricMetrics, storeStatus ?? store as ISubnetStoreStatus);
    }

    /// <summary>The agent's name (<see cref="FlannelAgentOptions.Name"/>).</summary>
    public string Name => _options.Name;

    /// <summary>This agent's readiness.</summary>
    public AgentReadiness Readiness { get; }

    /// <summary>This node's current lease; null until acquired.</summary>
    public Lease? OwnLease => Volatile.Read(ref _ownLease);

    /// <summary>The interface chosen at startup; null until chosen.</summary>
    public InterfaceSelectionResult? ExternalInterface { get; private set; }

    /// <summary>Completes when subnet.env has been written the first time (the agent became ready).</summary>
    public Task Started => _started.Task;

    /// <summary>
    /// Completes when the backend has programmed the first lease snapshot: every admitted peer the store listed at
    /// start-up. That is when the backend asks for the batch after it (see <see cref="INetwork.RunAsync"/>), which
    /// with thousands of peers is well after <see cref="Started"/>. Faults or is cancelled as <see cref="Started"/> is
    /// when the agent fails or stops first.
    /// </summary>
    public Task SnapshotProgrammed => _snapshotProgrammed.Task;

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var statusStopping = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        Task statusSocket = ServeStatusAsync(statusStopping.Token);
        try
        {
            await RunAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Normal shutdown.
        }
        catch (Exception ex)
        {
            LogFatal(_logger, _options.Name, ex);
            Readiness.MarkStopped($"failed: {ex.Message}");
            _health.ReportFailure(_options.Name, ex);
            _started.TrySetException(ex);
            _snapshotProgrammed.TrySetException(ex);
            throw;
        }
        finally
        {
            await statusStopping.CancelAsync().ConfigureAwait(false);
            await statusSocket.ConfigureAwait(false);
            CancellationToken stopped = stoppingToken.IsCancellationRequested ? stoppingToken : CancellationToken.None;
            _started.TrySetCanceled(stopped);
            _snapshotProgrammed.TrySetCanceled(stopped);
            if (stoppingToken.IsCancellationRequested)
            {
                Readiness.MarkStopped("stopped");
                LogStopped(_logger, _options.Name);
            }
        }
    }

    /// <summary>flanneld's start-up, one named phase after another, then the steady state until stopped.</summary>
    private async Task RunAsync(CancellationToken cancellationToken)
    {
        long startedAt = _timeProvider.GetTimestamp();
        NetworkConfig config = await ReadNetworkConfigAsync(cancellationToken).ConfigureAwait(false);
        SubnetEnvReadResult? previous = ReadPreviousSubnetFile();
        (ExternalInterface external, NodeHints hints) = await SelectExternalInterfaceAsync(config, cancellationToken).ConfigureAwait(false);
        INetwork network = await RegisterNetworkAsync(config, external, hints, cancellationToken).ConfigureAwait(false);
        Lease lease = await AcquireLeaseAsync(network, previous, cancellationToken).ConfigureAwait(false);
        Readiness.SetPhase("configuring the lease on the backend");
        await network.ConfigureLeaseAsync(lease, cancellationToken).ConfigureAwait(false);

        // subnet.env first, then the backend programs the peers while the rules are installed. flanneld writes
        // subnet.env after its rule set-up, but in iptables mode that set-up only recycles the old rules and creates
        // the chain: the rules themselves go in from a goroutine, so its subnet.env never waited for them. Here the
        // whole restore replaces the chains atomically (no recycle step to lose), so subnet.env waits for nothing
        // the CNI plugin needs, and with thousands of peers it no longer waits behind their programming. Readiness
        // still waits for the rules.
        Readiness.SetPhase("writing subnet.env");
        WriteSubnetFile(config, lease, network, cancellationToken);
        using var running = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // On the thread pool: with the snapshot already in memory, a backend may program all of it before its first
        // real await, and the rules would only start after that.
        Task backendTask = Task.Run(() => network.RunAsync(RemoteLeaseEventsAsync(running.Token), running.Token), CancellationToken.None);
        try
        {
            Readiness.SetPhase("installing masquerade and forward rules");
            await EnsureTrafficRulesAsync(lease, previous, isResync: false, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await running.CancelAsync().ConfigureAwait(false);
            await backendTask.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            throw;
        }

        Readiness.MarkStarted();
        _started.TrySetResult();
        TimeSpan timeToReady = _timeProvider.GetElapsedTime(startedAt);
        _gauges.Ready(timeToReady);
        LogReady(_logger, _options.Name, _options.SubnetFile, timeToReady);

        await RunUntilStoppedAsync(network, lease, backendTask, running, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Phase 1: the network configuration from the store (flanneld retries forever; we back off).</summary>
    private async Task<NetworkConfig> ReadNetworkConfigAsync(CancellationToken cancellationToken)
    {
        Readiness.SetPhase("waiting for the network configuration");
        NetworkConfig config = await RetryStoreAsync("read the network config", _store.GetNetworkConfigAsync, cancellationToken).ConfigureAwait(false);
        if (!config.EnableIPv4 && !config.EnableIPv6)
        {
            throw new NetworkConfigException("none defined stack: EnableIPv4 and EnableIPv6 are both false");
        }

        _config = config;
        LogConfig(_logger, _options.Name, config.Network, config.IPv6Network, config.BackendType);
        return config;
    }

    /// <summary>
    /// Phase 2: the external interface and public IP. The store's node hints may override the public IP, as kube's
    /// node-public-ip annotation does.
    /// </summary>
    private async Task<(ExternalInterface Interface, NodeHints Hints)> SelectExternalInterfaceAsync(NetworkConfig config, CancellationToken cancellationToken)
    {
        Readiness.SetPhase("selecting the external interface");
        InterfaceSelectionOptions selection = BuildSelectionOptions(config);
        var selector = new ExternalInterfaceSelector(_netlink);
        InterfaceSelectionResult chosen = await selector.SelectAsync(selection, cancellationToken).ConfigureAwait(false);
        NodeHints hints = await RetryStoreAsync(
            "read this node's hints",
            ct => _store.GetNodeHintsAsync(chosen.Interface.PublicIP ?? chosen.Interface.PublicIPv6, ct),
            cancellationToken).ConfigureAwait(false);
        if ((hints.PublicIP is not null && selection.PublicIP is null && !hints.PublicIP.Equals(chosen.Interface.PublicIP))
            || (hints.PublicIPv6 is not null && selection.PublicIPv6 is null && !hints.PublicIPv6.Equals(chosen.Interface.PublicIPv6)))
        {
            LogPublicIPHint(_logger, _options.Name, hints.PublicIP, hints.PublicIPv6);
            selection = selection with { PublicIP = hints.PublicIP ?? selection.PublicIP, PublicIPv6 = hints.PublicIPv6 ?? selection.PublicIPv6 };
            chosen = await selector.SelectAsync(selection, cancellationToken).ConfigureAwait(false);
        }

        ExternalInterface = chosen;
        ExternalInterface ext = chosen.Interface;
        LogInterfaceChosen(_logger, _options.Name, ext.Name, ext.IfaceAddress, ext.PublicIP, ext.Mtu, chosen.Reason);
        return (ext, hints);
    }

    /// <summary>Phase 3: the backend named by the config prepares the node (e.g. the VXLAN device) and says what the lease carries.</summary>
    private async Task<INetwork> RegisterNetworkAsync(NetworkConfig config, ExternalInterface external, NodeHints hints, CancellationToken cancellationToken)
    {
        IBackend backend = SelectBackend(config);
        Readiness.SetPhase($"registering the {backend.BackendType} network");
        INetwork network = await backend.RegisterNetworkAsync(
            new BackendContext { Config = config, ExternalInterface = external, PreviousAttributes = hints.PreviousAttributes },
            cancellationToken).ConfigureAwait(false);
        _network = network;
        return network;
    }

    /// <summary>Phase 4: a subnet lease, preferring the subnet subnet.env recorded before a restart.</summary>
    private async Task<Lease> AcquireLeaseAsync(INetwork network, SubnetEnvReadResult? previous, CancellationToken cancellationToken)
    {
        Readiness.SetPhase("acquiring a subnet lease");
        var request = new LeaseRequest
        {
            Attributes = network.LeaseAttributes,
            PreviousSubnet = previous?.Subnet,
            PreviousIPv6Subnet = previous?.IPv6Subnet,
        };
        Lease lease = await RetryStoreAsync("acquire a subnet lease", ct => _store.AcquireLeaseAsync(request, ct), cancellationToken).ConfigureAwait(false);
        Volatile.Write(ref _ownLease, lease);
        _gauges.LeaseRenewed();
        _metrics.RecordLeaseAcquired(_options.Name);
        LogLeaseAcquired(_logger, _options.Name, lease.Key, lease.Expiration,
            previous?.Subnet is IPNetwork before && before == lease.Subnet);
        return lease;
    }

    /// <summary>
    /// The steady state: the backend (started before subnet.env; <paramref name="linked"/> stops it) programs remote
    /// leases from the lease watch, the store keeps the lease, the rules are resynchronised and peers probed, until
    /// stopped; if one loop ends on its own, the agent fails with its error.
    /// </summary>
    private async Task RunUntilStoppedAsync(INetwork network, Lease lease, Task backendTask, CancellationTokenSource linked, CancellationToken cancellationToken)
    {
        Task keepTask = KeepLeaseAsync(linked.Token);
        Task resyncTask = ResyncLoopAsync(linked.Token);
        SetProbeEndpoints(lease, network);
        Task probeTask = RunProbesAsync(linked.Token);
        Task first = await Task.WhenAny(backendTask, keepTask, resyncTask).ConfigureAwait(false);
        await linked.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(backendTask, keepTask, resyncTask, probeTask).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException) when (first != backendTask || !backendTask.IsFaulted)
        {
            // The other loops were cancelled because one ended; the faulted one is reported below.
        }

        cancellationToken.ThrowIfCancellationRequested();
        await first.ConfigureAwait(false);
        throw new InvalidOperationException("the backend stopped running although the agent was not stopped");
    }

    private InterfaceSelectionOptions BuildSelectionOptions(NetworkConfig config) => new()
    {
        Interfaces = [.. _options.Iface],
        InterfaceRegexes = [.. _options.IfaceRegex],
        CanReach = string.IsNullOrEmpty(_options.IfaceCanReach) ? null : IPAddress.Parse(_options.IfaceCanReach),
        PublicIP = string.IsNullOrEmpty(_options.PublicIP) ? null : IPAddress.Parse(_options.PublicIP),
        PublicIPv6 = string.IsNullOrEmpty(_options.PublicIPv6) ? null : IPAddress.Parse(_options.PublicIPv6),
        EnableIPv4 = config.EnableIPv4,
        EnableIPv6 = config.EnableIPv6,
    };

    // Backends flannel has and Flannel.NET deliberately does not, so the error can say so rather than "unknown".
    private static readonly string[] FlannelOnlyBackendTypes = ["udp", "ipip", "ipsec", "tencent-vpc"];

    private IBackend SelectBackend(NetworkConfig config)
    {
        foreach (IBackend candidate in _backends)
        {
            if (string.Equals(candidate.BackendType, config.BackendType, StringComparison.OrdinalIgnoreCase))
            {
                return candidate;
            }
        }

        string registered = _backends.Count == 0 ? "none" : string.Join(", ", _backends.Select(b => b.BackendType));
        string flannelOnly = FlannelOnlyBackendTypes.Contains(config.BackendType, StringComparer.OrdinalIgnoreCase)
            ? $"; {config.BackendType} is a flannel backend that Flannel.NET does not implement"
            : string.Empty;
        throw new NetworkConfigException(
            $"unknown backend type: {config.BackendType} (Backend.Type in the network config{flannelOnly}); this agent supports: {registered}",
            "Backend.Type",
            config.BackendType);
    }

    private SubnetEnvReadResult? ReadPreviousSubnetFile()
    {
        try
        {
            SubnetEnvReadResult previous = SubnetEnvFile.Read(_options.SubnetFile);
            if (!previous.Exists || previous.Subnet is null)
            {
                LogNoPreviousSubnetFile(_logger, _options.Name, _options.SubnetFile, string.Join("; ", previous.Problems));
            }
            else
            {
                LogPreviousSubnetFile(_logger, _options.Name, _options.SubnetFile, previous.Subnet);
            }

            return previous.Exists ? previous : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogSubnetFileUnreadable(_logger, _options.Name, _options.SubnetFile, ex);
            return null;
        }
    }

    private void WriteSubnetFile(NetworkConfig config, Lease lease, INetwork network, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        SubnetEnvFile.Write(_options.SubnetFile, SubnetEnvironment.Create(config, lease, network.Mtu, _options.IpMasq));
    }

    private async ValueTask EnsureTrafficRulesAsync(Lease lease, SubnetEnvReadResult? previous, bool isResync, CancellationToken cancellationToken)
    {
        if (_trafficRules is null)
        {
            if (!isResync && (_options.IpMasq || _options.IptablesForwardRules || _options.IpBlackholeRoute))
            {
                LogNoTrafficRules(_logger, _options.Name);
            }

            return;
        }

        await _trafficRules.EnsureAsync(
            new TrafficRulesRequest
            {
                Config = _config!,
                Lease = lease,
                IpMasq = _options.IpMasq,
                RandomFully = !_options.IpMasqFullyRandomDisable,
                ForwardRules = _options.IptablesForwardRules,
                BlackholeRoute = _options.IpBlackholeRoute,
                PreviousNetwork = previous?.Network,
                PreviousSubnet = previous?.Subnet,
                PreviousIPv6Network = previous?.IPv6Network,
                PreviousIPv6Subnet = previous?.IPv6Subnet,
                IsResync = isResync,
            },
            cancellationToken).ConfigureAwait(false);
    }

    private async Task ResyncLoopAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            await Task.Delay(_options.IptablesResync, _timeProvider, cancellationToken).ConfigureAwait(false);
            Lease? lease = OwnLease;
            if (lease is null)
            {
                continue;
            }

            try
            {
                await EnsureTrafficRulesAsync(lease, null, isResync: true, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // A failed resync is retried at the next period; the rules from the last success stay in place.
                LogResyncFailed(_logger, _options.Name, ex);
            }
        }
    }

    private async Task KeepLeaseAsync(CancellationToken cancellationToken)
    {
        TimeSpan delay = _options.StoreRetryInitialDelay;
        while (true)
        {
            try
            {
                await foreach (Lease updated in _store.KeepLeaseAsync(OwnLease!, cancellationToken).ConfigureAwait(false))
                {
                    delay = _options.StoreRetryInitialDelay;
                    await OnOwnLeaseUpdatedAsync(updated, cancellationToken).ConfigureAwait(false);
                }

                cancellationToken.ThrowIfCancellationRequested();
                LogKeepLeaseEnded(_logger, _options.Name);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception ex)
            {
                LogKeepLeaseFailed(_logger, _options.Name, delay.TotalSeconds, ex);
            }

            await Task.Delay(delay, _timeProvider, cancellationToken).ConfigureAwait(false);
            delay = NextDelay(delay);
        }
    }

    private async ValueTask OnOwnLeaseUpdatedAsync(Lease updated, CancellationToken cancellationToken)
    {
        Lease old = OwnLease!;
        _gauges.LeaseRenewed();
        if (updated.HasSameSubnets(old))
        {
            _metrics.RecordLeaseRenewed(_options.Name);
            Volatile.Write(ref _ownLease, updated);
            LogLeaseRenewed(_logger, _options.Name, updated.Key, updated.Expiration);
            return;
        }

        // The store lost our lease and re-acquired another subnet: reprogram everything that carries the subnet.
        LogLeaseChanged(_logger, _options.Name, old.Key, updated.Key);
        _metrics.RecordLeaseAcquired(_options.Name);
        Readiness.SetWatchProblem(null);
        Volatile.Write(ref _ownLease, updated);
        if (Volatile.Read(ref _tracker) is RemoteLeaseTracker tracker)
        {
            tracker.OwnLease = updated;
        }

        await _network!.ConfigureLeaseAsync(updated, cancellationToken).ConfigureAwait(false);
        SetProbeEndpoints(updated, _network);
        var previous = new SubnetEnvReadResult { Exists = true, Network = _config!.Network, Subnet = old.Subnet, IPv6Network = _config.IPv6Network, IPv6Subnet = old.IPv6Subnet };
        await EnsureTrafficRulesAsync(updated, previous, isResync: false, cancellationToken).ConfigureAwait(false);
        WriteSubnetFile(_config, updated, _network, cancellationToken);
    }

    /// <summary>
    /// The backend's input: the store's watch turned into batches of remote-lease events. When the watch fails it is
    /// restarted with backoff and readiness drops until its next snapshot, which is diffed against what the backend
    /// already programmed (leases deleted meanwhile are removed).
    /// </summary>
    private async IAsyncEnumerable<IReadOnlyList<LeaseEvent>> RemoteLeaseEventsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var remote = new RemoteLeaseTracker(OwnLease, _config, _network as ILeaseAdmission, OnLeaseRejected);
        _tracker = remote;
        TimeSpan delay = _options.StoreRetryInitialDelay;
        bool seenSnapshot = false;
        while (!cancellationToken.IsCancellationRequested)
        {
            IAsyncEnumerator<LeaseWatchResult> watch = _store.WatchLeasesAsync(cancellationToken).GetAsyncEnumerator(cancellationToken);
            string? problem = null;
            try
            {
                while (true)
                {
                    LeaseWatchResult? item = null;
                    try
                    {
                        if (await watch.MoveNextAsync().ConfigureAwait(false))
                        {
                            item = watch.Current;
                        }
                        else
                        {
                            problem = "the lease watch ended";
                        }
                    }
                    catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                    {
                        throw;
                    }
                    catch (Exception ex)
                    {
                        problem = $"the lease watch failed: {ex.Message}";
                        LogWatchFailed(_logger, _options.Name, delay.TotalSeconds, ex);
                    }

                    if (item is null)
                    {
                        break;
                    }

                    if (item.IsSnapshot)
                    {
                        if (seenSnapshot)
                        {
                            _metrics.RecordWatchRestart(_options.Name, "relist");
                        }

                        seenSnapshot = true;
                        delay = _options.StoreRetryInitialDelay;
                        Readiness.SetWatchProblem(null);
                    }

                    IReadOnlyList<LeaseEvent> batch = remote.Apply(item);
                    _gauges.SetPeers(remote.RemoteLeases.Count);
                    if (batch.Count > 0 || item.IsSnapshot)
                    {
                        PublishRemoteLeases(remote);
                    }

                    if (batch.Count == 0 && !item.IsSnapshot)
                    {
                        continue;
                    }

                    LogLeaseBatch(_logger, _options.Name, item.IsSnapshot, batch.Count(e => e.Type == LeaseEventType.Added), batch.Count(e => e.Type == LeaseEventType.Removed), remote.RemoteLeases.Count);
                    long handedAt = _timeProvider.GetTimestamp();
                    yield return batch;

                    // The backend asks for the next batch only when it has programmed this one.
                    _metrics.RecordApplyDuration(_options.Name, _timeProvider.GetElapsedTime(handedAt));
                    if (item.IsSnapshot)
                    {
                        _snapshotProgrammed.TrySetResult();
                    }
                }
            }
            finally
            {
                await watch.DisposeAsync().ConfigureAwait(false);
            }

            _metrics.RecordWatchRestart(_options.Name, "error");
            Readiness.SetWatchProblem(problem);
            await Task.Delay(delay, _timeProvider, cancellationToken).ConfigureAwait(false);
            delay = NextDelay(delay);
        }
    }

    private void OnLeaseRejected(Lease lease, LeaseRejection rejection)
    {
        LogLeaseRejected(_logger, _options.Name, lease.Key, rejection.Rule, rejection.Reason);
        _metrics.RecordLeaseRejected(_options.Name, rejection.Rule);
    }

    private async ValueTask<T> RetryStoreAsync<T>(string what, Func<CancellationToken, ValueTask<T>> call, CancellationToken cancellationToken)
    {
        TimeSpan delay = _options.StoreRetryInitialDelay;
        while (true)
        {
            try
            {
                return await call(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception ex)
            {
                // Store outages, a missing or invalid config (an operator may still write it): retry, as flanneld does.
                LogStoreRetry(_logger, _options.Name, what, delay.TotalSeconds, ex.Message, ex);
                Readiness.SetPhase($"failed to {what}: {ex.Message}");
            }

            await Task.Delay(delay, _timeProvider, cancellationToken).ConfigureAwait(false);
            delay = NextDelay(delay);
        }
    }

    private TimeSpan NextDelay(TimeSpan delay)
    {
        TimeSpan doubled = delay * 2;
        return doubled > _options.StoreRetryMaxDelay ? _options.StoreRetryMaxDelay : doubled;
    }
}
