using System.Net;
using System.Net.Sockets;
using Flannel.Agent.Probing;
using Flannel.Agent.Status;
using Flannel.Backends;
using Flannel.Configuration;
using Flannel.Subnets;
using Microsoft.Extensions.Logging;

namespace Flannel.Agent;

/// <summary>The agent's fabric status (<see cref="IFabricStatus"/>) and its peer probes.</summary>
public sealed partial class FlannelAgent : IFabricStatus
{
    private FabricProber? _prober;
    private IReadOnlyList<Lease> _remoteLeases = [];
    private ISubnetStoreStatus? _storeStatus;

    /// <summary>The probe results, or null when probing is off (exposed for tests and embedders' diagnostics).</summary>
    internal FabricProber? Prober => _prober;

    /// <inheritdoc />
    public FabricStatus GetStatus()
    {
        DateTimeOffset now = _timeProvider.GetUtcNow();
        Lease? own = OwnLease;
        NetworkConfig? config = Volatile.Read(ref _config);
        INetwork? network = Volatile.Read(ref _network);
        ExternalInterface? ext = ExternalInterface?.Interface;
        IReadOnlyList<Lease> remote = Volatile.Read(ref _remoteLeases);
        IReadOnlyDictionary<string, (PathStatus? Overlay, PathStatus? Underlay)>? probes = _prober?.Snapshot();
        var kernel = network as IPeerKernelStateSource;
        var peers = new List<PeerStatus>(remote.Count);
        foreach (Lease lease in remote.OrderBy(l => l.Key, StringComparer.Ordinal))
        {
            (PathStatus? overlay, PathStatus? underlay) = probes is not null && probes.TryGetValue(lease.Key, out var paths) ? paths : default;
            peers.Add(FabricStatusBuilder.ToPeerStatus(lease, kernel?.GetPeerKernelStatus(lease.Key) ?? PeerKernelStatus.Unknown, overlay, underlay));
        }

        string? storeProblem = _storeStatus?.NotReadyReason;
        string? notReady = Readiness.NotReadyReason;
        return new FabricStatus
        {
            GeneratedAt = now,
            Node = new NodeStatus
            {
                Name = Name,
                Ready = notReady is null,
                NotReadyReason = notReady,
                Network = config?.EnableIPv4 == true ? config.Network?.ToString() : null,
                IPv6Network = config?.EnableIPv6 == true ? config.IPv6Network?.ToString() : null,
                Backend = config?.BackendType,
                Device = network is IOverlayNetwork overlayNetwork ? string.Join(",", overlayNetwork.DeviceNames) : null,
                Mtu = network?.Mtu,
                Interface = ext is null ? null : new InterfaceStatus(ext.Name, (ext.IfaceAddress ?? ext.IfaceIPv6Address)?.ToString(), ext.Mtu),
                Lease = own is null ? null : FabricStatusBuilder.ToLeaseStatus(own),
                Store = new StoreStatus(storeProblem is null, storeProblem),
            },
            Probes = _prober is null ? null : new ProbeSettings(_options.Probes.Interval.TotalSeconds, _options.Probes.Timeout.TotalMilliseconds, _prober.PeersPerSecond),
            Peers = peers,
            Summary = FabricSummary.From(peers),
        };
    }

    private void CreateProber(IEchoProber? echoProber, FabricMetrics? fabricMetrics, ISubnetStoreStatus? storeStatus)
    {
        _storeStatus = storeStatus;
        if (echoProber is null || !_options.Probes.Enabled)
        {
            return;
        }

        _prober = new FabricProber(_options.Name, _options.Probes, echoProber, _timeProvider, _logger, fabricMetrics)
        {
            KernelStatusOf = key => (Volatile.Read(ref _network) as IPeerKernelStateSource)?.GetPeerKernelStatus(key) ?? PeerKernelStatus.Unknown,
        };
    }

    /// <summary>Points the probes at this node's addresses: the overlay device's (the lease's first address) and the external interface's.</summary>
    private void SetProbeEndpoints(Lease lease, INetwork network)
    {
        if (_prober is null)
        {
            return;
        }

        ExternalInterface? ext = ExternalInterface?.Interface;
        AddressFamily family = lease.Subnet is not null ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6;
        IPAddress? underlaySource = family == AddressFamily.InterNetwork ? ext?.IfaceAddress : ext?.IfaceIPv6Address;
        ProbeEndpoints endpoints = network is IOverlayNetwork overlay
            ? new ProbeEndpoints(overlay.OverlayAddressOf(lease, family), underlaySource, overlay.OverlayAddressOf, overlay.OverlayFailureCauses)
            : new ProbeEndpoints(null, underlaySource, null);
        _prober.SetEndpoints(endpoints);
    }

    /// <summary>Publishes the remote leases to the status and the probes, after each batch from the watch.</summary>
    private void PublishRemoteLeases(RemoteLeaseTracker remote)
    {
        Lease[] leases = [.. remote.RemoteLeases.Values];
        Volatile.Write(ref _remoteLeases, leases);
        _prober?.SetPeers(leases);
    }

    /// <summary>Probes until stopped. A failing prober is logged and never stops the agent.</summary>
    private async Task RunProbesAsync(CancellationToken cancellationToken)
    {
        if (_prober is null)
        {
            return;
        }

        try
        {
            await _prober.RunAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogProbesFailed(_logger, _options.Name, ex);
        }
    }

    /// <summary>Serves the status on <see cref="FlannelAgentOptions.StatusSocket"/> for the agent's whole life; a socket that cannot be served is logged and never stops the agent.</summary>
    private async Task ServeStatusAsync(CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(_options.StatusSocket))
        {
            return;
        }

        await Task.Yield();
        try
        {
            using var server = new StatusSocketServer(this, new StatusSocketOptions { Path = _options.StatusSocket }, _logger, _timeProvider);
            await server.RunAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            LogStatusSocketFailed(_logger, _options.Name, _options.StatusSocket, ex);
        }
    }

    [LoggerMessage(EventId = 7020, Level = LogLevel.Error, Message = "[{Agent}] Cannot serve the status on {Path}; the agent runs on without it")]
    private static partial void LogStatusSocketFailed(ILogger logger, string agent, string path, Exception exception);

    [LoggerMessage(EventId = 7019, Level = LogLevel.Error, Message = "[{Agent}] Peer probes stopped; the status shows their last results")]
    private static partial void LogProbesFailed(ILogger logger, string agent, Exception exception);
}
