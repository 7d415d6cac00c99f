using Microsoft.Extensions.Logging;

namespace Flannel.Agent.Traffic;

/// <summary>What both modes share: the command runner, one lock around every change, and the resync loop.</summary>
internal abstract class TrafficManagerBase : ITrafficManager
{
    // One change at a time: a resync must not re-apply a rule set a setup call is replacing (flannel: one mutex per restore helper).
    private readonly SemaphoreSlim _lock = new(1, 1);

    // Lease subnets that must keep a blackhole route (--ip-blackhole-route).
    private List<System.Net.IPNetwork> _blackholes = [];

    protected TrafficManagerBase(ICommandRunner runner, TrafficManagerOptions options, TimeProvider timeProvider, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(runner);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);
        Runner = runner;
        Options = options;
        TimeProvider = timeProvider;
        Logger = logger;
    }

    protected ICommandRunner Runner { get; }

    protected TrafficManagerOptions Options { get; }

    protected TimeProvider TimeProvider { get; }

    protected ILogger Logger { get; }

    public abstract Task InitializeAsync(CancellationToken cancellationToken);

    public void Dispose() => _lock.Dispose();

    public abstract Task SetupAndEnsureMasqRulesAsync(TrafficNetworks current, TrafficNetworks? previous, CancellationToken cancellationToken);

    public abstract Task SetupAndEnsureForwardRulesAsync(TrafficNetworks networks, CancellationToken cancellationToken);

    public Task SetupAndEnsureBlackholeRoutesAsync(TrafficNetworks networks, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(networks);
        return LockedAsync(async ct =>
        {
            List<System.Net.IPNetwork> wanted = [.. new[] { networks.Subnet, networks.IPv6Subnet }.OfType<System.Net.IPNetwork>()];

            // A changed lease: the old subnet's blackhole goes (it may be another node's subnet now).
            foreach (System.Net.IPNetwork old in _blackholes.Where(b => !wanted.Contains(b)))
            {
                await DeleteBlackholeRouteAsync(old, BlackholeRoute.Metric, ct).ConfigureAwait(false);
            }

            _blackholes = wanted;
            foreach (System.Net.IPNetwork subnet in wanted)
            {
                await EnsureBlackholeRouteAsync(subnet, ct).ConfigureAwait(false);
            }

            return true;
        }, cancellationToken);
    }

    public async Task<int> ResyncAsync(CancellationToken cancellationToken)
    {
        var repaired = new List<string>();
        var errors = new List<Exception>();
        await LockedAsync(async ct =>
        {
            await ResyncCoreAsync(repaired, errors, ct).ConfigureAwait(false);
            foreach (System.Net.IPNetwork subnet in _blackholes)
            {
                try
                {
                    if (await EnsureBlackholeRouteAsync(subnet, ct).ConfigureAwait(false))
                    {
                        repaired.Add($"blackhole route {subnet}");
                    }
                }
                catch (TrafficRulesException e)
                {
                    errors.Add(e);
                }
            }

            return true;
        }, cancellationToken).ConfigureAwait(false);

        foreach (string chain in repaired)
        {
            TrafficLog.RulesRepaired(Logger, chain);
        }

        // One broken family or table does not stop the others from being repaired; the failures are reported together.
        return errors.Count switch
        {
            0 => repaired.Count,
            1 => throw errors[0],
            _ => throw new AggregateException("several traffic rule sets could not be ensured", errors),
        };
    }

    /// <summary>
    /// Adds our <c>blackhole SUBNET</c> (protocol 70, lowest priority) to the main table when it is absent, flannel's
    /// add-if-absent; "File exists" (added meanwhile) is fine. A blackhole of ours with another metric (what earlier
    /// versions wrote, at metric 0) is deleted: at the same metric as the bridge plugin's <c>cni0</c> route it
    /// shadows that route when it was there first.
    /// </summary>
    /// <returns>True when the route had to be added.</returns>
    private async Task<bool> EnsureBlackholeRouteAsync(System.Net.IPNetwork subnet, CancellationToken cancellationToken)
    {
        string family = Family(subnet);
        string prefix = subnet.ToString();
        CommandResult show = await RunCheckedAsync(
            "ip",
            [family, "route", "show", "table", "main", "type", "blackhole", "exact", prefix, "proto", BlackholeRoute.ProtocolText],
            null,
            cancellationToken).ConfigureAwait(false);
        bool present = false;
        foreach (string line in show.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            uint metric = BlackholeRoute.MetricOf(line);
            if (metric == BlackholeRoute.Metric)
            {
                present = true;
            }
            else
            {
                await DeleteBlackholeRouteAsync(subnet, metric, cancellationToken).ConfigureAwait(false);
            }
        }

        if (present)
        {
            return false;
        }

        CommandResult add = await TryRunAsync(
            "ip",
            [family, "route", "add", "blackhole", prefix, "table", "main", "proto", BlackholeRoute.ProtocolText, "metric", BlackholeRoute.MetricText],
            null,
            cancellationToken).ConfigureAwait(false);
        if (add.Succeeded)
        {
            return true;
        }

        if (add.StandardError.Contains("File exists", StringComparison.Ordinal))
        {
            return false;
        }

        throw new TrafficRulesException($"ip {family} route add blackhole {prefix} failed with exit code {add.ExitCode}: {add.StandardError.Trim()}");
    }

    private async Task DeleteBlackholeRouteAsync(System.Net.IPNetwork subnet, uint metric, CancellationToken cancellationToken)
    {
        string family = Family(subnet);
        CommandResult delete = await TryRunAsync(
            "ip",
            [family, "route", "del", "blackhole", subnet.ToString(), "table", "main", "proto", BlackholeRoute.ProtocolText,
                "metric", metric.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            null,
            cancellationToken).ConfigureAwait(false);

        // "No such process": gone already.
        if (!delete.Succeeded && !delete.StandardError.Contains("No such process", StringComparison.Ordinal))
        {
            throw new TrafficRulesException($"ip {family} route del blackhole {subnet} failed with exit code {delete.ExitCode}: {delete.StandardError.Trim()}");
        }
    }

    private static string Family(System.Net.IPNetwork subnet) =>
        subnet.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "-6" : "-4";

    /// <summary>
    /// Checks the installed rule sets, adding the names of those it re-applied to <paramref name="repaired"/> and the
    /// failures (one per rule set or table) to <paramref name="errors"/>.
    /// </summary>
    protected abstract Task ResyncCoreAsync(List<string> repaired, List<Exception> errors, CancellationToken cancellationToken);

    protected async Task<T> LockedAsync<T>(Func<CancellationToken, Task<T>> action, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await action(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Runs a command and throws <see cref="TrafficRulesException"/> when it fails.</summary>
    protected async Task<CommandResult> RunCheckedAsync(string fileName, IReadOnlyList<string> arguments, string? input, CancellationToken cancellationToken)
    {
        CommandResult result = await TryRunAsync(fileName, arguments, input, cancellationToken).ConfigureAwait(false);
        return result.Succeeded
            ? result
            : throw new TrafficRulesException($"{fileName} {string.Join(' ', arguments)} failed with exit code {result.ExitCode}: {result.StandardError.Trim()}");
    }

    /// <summary>Runs a command; a missing program counts as a failed command instead of an exception.</summary>
    protected async Task<CommandResult> TryRunAsync(string fileName, IReadOnlyList<string> arguments, string? input, CancellationToken cancellationToken)
    {
        try
        {
            return await Runner.RunAsync(fileName, arguments, input, cancellationToken).ConfigureAwait(false);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return new CommandResult(127, "", e.Message);
        }
    }
}

/// <summary>iptables, ip6tables or nft refused a change or could not be run.</summary>
public sealed class TrafficRulesException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TrafficRulesException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public TrafficRulesException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public TrafficRulesException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
