using System.Diagnostics.Metrics;
using Flannel.Backends;
using Flannel.Netlink;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Flannel.Reconciliation;

/// <summary>
/// The shared part of a backend whose networks are <see cref="ReconcilingNetwork"/>s: the node's netlink, the clock,
/// the logger, the meter factory and the resync interval, checked once here rather than in every backend.
/// </summary>
public abstract class ReconcilingBackend : IBackend
{
    private readonly IMeterFactory? _meterFactory;

    /// <summary>Creates the backend over the node's <see cref="INetlink"/>.</summary>
    /// <param name="backendType">The backend type in net-conf.json and in lease attributes, e.g. <c>host-gw</c>.</param>
    /// <param name="netlink">The kernel interface (bound to the node's network namespace).</param>
    /// <param name="resyncInterval">How often each network compares the kernel with its desired state; positive.</param>
    /// <param name="timeProvider">Clock for resync ticks and retry backoff.</param>
    /// <param name="logger">Logger; none when null.</param>
    /// <param name="meterFactory">Creates the <c>Flannel.Backends</c> meter; a private meter when null.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="resyncInterval"/> is zero or negative.</exception>
    protected ReconcilingBackend(string backendType, INetlink netlink, TimeSpan resyncInterval, TimeProvider timeProvider, ILogger? logger, IMeterFactory? meterFactory)
    {
        ArgumentException.ThrowIfNullOrEmpty(backendType);
        ArgumentNullException.ThrowIfNull(netlink);
        ArgumentNullException.ThrowIfNull(timeProvider);
        if (resyncInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(resyncInterval), resyncInterval, $"{backendType}: the resync interval must be positive.");
        }

        BackendType = backendType;
        Netlink = netlink;
        ResyncInterval = resyncInterval;
        TimeProvider = timeProvider;
        Logger = logger ?? NullLogger.Instance;
        _meterFactory = meterFactory;
    }

    /// <inheritdoc />
    public string BackendType { get; }

    /// <summary>Netlink, bound to the node's network namespace.</summary>
    protected INetlink Netlink { get; }

    /// <summary>How often each network reconciles.</summary>
    protected TimeSpan ResyncInterval { get; }

    /// <summary>The clock for resync ticks and retry backoff.</summary>
    protected TimeProvider TimeProvider { get; }

    /// <summary>The backend's logger.</summary>
    protected ILogger Logger { get; }

    /// <inheritdoc />
    public abstract ValueTask<INetwork> RegisterNetworkAsync(BackendContext context, CancellationToken cancellationToken);

    /// <summary>The instruments for a network of this backend, tagged with <see cref="BackendType"/>.</summary>
    protected BackendMetrics CreateMetrics() => new(BackendType, _meterFactory);
}
