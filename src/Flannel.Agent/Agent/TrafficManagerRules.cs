using Flannel.Agent.Traffic;
using Microsoft.Extensions.Logging;

namespace Flannel.Agent;

/// <summary>
/// Connects the agent to the iptables/nftables <see cref="ITrafficManager"/>. The mode is only known once the
/// network config is read (<c>EnableNFTables</c>), so the manager is created on the first call: it cleans up the
/// other mode, installs the masquerade (<c>--ip-masq</c>) and forward (<c>--iptables-forward-rules</c>) rules make-before-break
/// and the blackhole route (<c>--ip-blackhole-route</c>), and is then resynchronised by the agent every <c>--iptables-resync</c>. A changed lease replaces the rule set in
/// one transaction. Rules are left in place when the agent stops.
/// </summary>
public sealed class TrafficManagerRules : IAgentTrafficRules, IDisposable
{
    private readonly ICommandRunner _runner;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private ITrafficManager? _manager;

    /// <summary>Creates the adapter; <paramref name="runner"/> decides the namespace the rules go to (null: this process's).</summary>
    public TrafficManagerRules(ICommandRunner? runner, TimeProvider timeProvider, ILogger<TrafficManagerRules> logger)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);
        _runner = runner ?? ProcessCommandRunner.Instance;
        _timeProvider = timeProvider;
        _logger = logger;
    }

    /// <inheritdoc />
    public async ValueTask EnsureAsync(TrafficRulesRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!request.IpMasq && !request.ForwardRules && !request.BlackholeRoute)
        {
            return;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (request.IsResync)
            {
                if (_manager is not null)
                {
                    await _manager.ResyncAsync(cancellationToken).ConfigureAwait(false);
                }

                return;
            }

            if (_manager is null)
            {
                ITrafficManager manager = TrafficManager.Create(
                    request.Config.EnableNFTables,
                    _runner,
                    new TrafficManagerOptions { DisableFullyRandom = !request.RandomFully },
                    _timeProvider,
                    _logger);
                await manager.InitializeAsync(cancellationToken).ConfigureAwait(false);
                _manager = manager;
            }

            var current = new TrafficNetworks
            {
                Network = request.Config.EnableIPv4 ? request.Config.Network : null,
                Subnet = request.Config.EnableIPv4 ? request.Lease.Subnet : null,
                IPv6Network = request.Config.EnableIPv6 ? request.Config.IPv6Network : null,
                IPv6Subnet = request.Config.EnableIPv6 ? request.Lease.IPv6Subnet : null,
            };
            TrafficNetworks? previous = request.PreviousNetwork is null && request.PreviousIPv6Network is null
                ? null
                : new TrafficNetworks
                {
                    Network = request.PreviousNetwork,
                    Subnet = request.PreviousSubnet,
                    IPv6Network = request.PreviousIPv6Network,
                    IPv6Subnet = request.PreviousIPv6Subnet,
                };
            if (request.IpMasq)
            {
                await _manager.SetupAndEnsureMasqRulesAsync(current, previous, cancellationToken).ConfigureAwait(false);
            }

            if (request.ForwardRules)
            {
                await _manager.SetupAndEnsureForwardRulesAsync(current, cancellationToken).ConfigureAwait(false);
            }

            if (request.BlackholeRoute)
            {
                await _manager.SetupAndEnsureBlackholeRoutesAsync(current, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _manager?.Dispose();
        _gate.Dispose();
    }
}
