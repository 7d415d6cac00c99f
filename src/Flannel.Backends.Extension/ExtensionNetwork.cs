using System.Text.Json;
using Flannel.Subnets;
using Microsoft.Extensions.Logging;

namespace Flannel.Backends.Extension;

/// <summary>The extension backend's network: runs PostStartupCommand for the own lease and the subnet commands per peer.</summary>
internal sealed partial class ExtensionNetwork : INetwork
{
    private readonly ExtensionConfig _config;
    private readonly BackendContext _context;
    private readonly ExtensionCommandRunner _runner;
    private readonly ILogger _logger;
    private System.Net.IPNetwork? _postStartupSubnet;

    public ExtensionNetwork(ExtensionConfig config, BackendContext context, LeaseAttributes attributes, ExtensionCommandRunner runner, ILogger logger)
    {
        _config = config;
        _context = context;
        LeaseAttributes = attributes;
        _runner = runner;
        _logger = logger;
    }

    /// <inheritdoc />
    public LeaseAttributes LeaseAttributes { get; }

    /// <inheritdoc />
    /// <remarks>The interface's MTU: the commands decide any encapsulation, as in flannel.</remarks>
    public int Mtu => _context.ExternalInterface.Mtu;

    /// <inheritdoc />
    /// <remarks>Runs PostStartupCommand once per subnet (again only if the node's subnet changes).</remarks>
    public async ValueTask ConfigureLeaseAsync(Lease ownLease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ownLease);
        if (_config.PostStartupCommand is not { } post)
        {
            if (_postStartupSubnet is null)
            {
                LogNoPostStartup(_logger);
                _postStartupSubnet = ownLease.Subnet;
            }

            return;
        }

        if (_postStartupSubnet is { } done && done == ownLease.Subnet)
        {
            return;
        }

        var environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["NETWORK"] = _context.Config.Network?.ToString() ?? string.Empty,
            ["SUBNET"] = ownLease.Subnet?.ToString() ?? string.Empty,
            ["PUBLIC_IP"] = LeaseAttributes.PublicIP.ToString(),
        };
        ExtensionCommandResult result = await _runner.RunAsync(post, environment, string.Empty, cancellationToken).ConfigureAwait(false);
        ExtensionBackend.ThrowIfFailed(result);
        ExtensionBackend.LogRan(_logger, post, result.Output);
        _postStartupSubnet = ownLease.Subnet;
    }

    /// <inheritdoc />
    public async Task RunAsync(IAsyncEnumerable<IReadOnlyList<LeaseEvent>> leaseEvents, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(leaseEvents);
        LogWatching(_logger);
        try
        {
            await foreach (IReadOnlyList<LeaseEvent> batch in leaseEvents.WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                foreach (LeaseEvent leaseEvent in batch)
                {
                    await HandleAsync(leaseEvent, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Shutting down leaves whatever the commands programmed in place.
        }
    }

    private async Task HandleAsync(LeaseEvent leaseEvent, CancellationToken cancellationToken)
    {
        Lease lease = leaseEvent.Lease;
        bool added = leaseEvent.Type == LeaseEventType.Added;
        if (added)
        {
            LogSubnetAdded(_logger, lease.Subnet, lease.Attributes.PublicIP);
        }
        else
        {
            LogSubnetRemoved(_logger, lease.Subnet);
        }

        if (!string.Equals(lease.Attributes.BackendType, ExtensionBackend.TypeName, StringComparison.Ordinal))
        {
            LogIgnoring(_logger, lease.Attributes.BackendType);
            return;
        }

        // The agent delivers each lease once per change (no renewals), so each Added runs the add command once.
        string? command = added ? _config.SubnetAddCommand : _config.SubnetRemoveCommand;

        if (command is null)
        {
            return;
        }

        if (!TryDecodeBackendData(lease.Attributes.BackendData, out string standardInput, out string? error))
        {
            LogBadBackendData(_logger, lease.Key, error);
            return;
        }

        var environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["SUBNET"] = lease.Subnet?.ToString() ?? string.Empty,
            ["PUBLIC_IP"] = lease.Attributes.PublicIP.ToString(),
        };
        ExtensionCommandResult result = await _runner.RunAsync(command, environment, standardInput, cancellationToken).ConfigureAwait(false);
        if (result.Succeeded)
        {
            ExtensionBackend.LogRan(_logger, command, result.Output);
        }
        else
        {
            LogFailed(_logger, command, result.Error, result.Output);
        }
    }

    /// <summary>flannel unmarshals BackendData into a Go string: it must be a JSON string (or null, read as empty).</summary>
    private static bool TryDecodeBackendData(string? backendData, out string value, out string? error)
    {
        value = string.Empty;
        error = null;
        if (string.IsNullOrEmpty(backendData))
        {
            return true;
        }

        try
        {
            using JsonDocument document = JsonDocument.Parse(backendData);
            switch (document.RootElement.ValueKind)
            {
                case JsonValueKind.String:
                    value = document.RootElement.GetString()!;
                    return true;
                case JsonValueKind.Null:
                    return true;
                default:
                    error = $"json: cannot unmarshal {document.RootElement.ValueKind.ToString().ToLowerInvariant()} into Go value of type string";
                    return false;
            }
        }
        catch (JsonException e)
        {
            error = e.Message;
            return false;
        }
    }

    [LoggerMessage(EventId = 4202, Level = LogLevel.Information, Message = "No post startup command configured - skipping")]
    private static partial void LogNoPostStartup(ILogger logger);

    [LoggerMessage(EventId = 4203, Level = LogLevel.Information, Message = "Watching for new subnet leases")]
    private static partial void LogWatching(ILogger logger);

    [LoggerMessage(EventId = 4204, Level = LogLevel.Information, Message = "Subnet added: {Subnet} via {PublicIP}")]
    private static partial void LogSubnetAdded(ILogger logger, System.Net.IPNetwork? subnet, System.Net.IPAddress publicIP);

    [LoggerMessage(EventId = 4205, Level = LogLevel.Information, Message = "Subnet removed: {Subnet}")]
    private static partial void LogSubnetRemoved(ILogger logger, System.Net.IPNetwork? subnet);

    [LoggerMessage(EventId = 4206, Level = LogLevel.Warning, Message = "Ignoring non-extension subnet: type={BackendType}")]
    private static partial void LogIgnoring(ILogger logger, string? backendType);

    [LoggerMessage(EventId = 4207, Level = LogLevel.Error, Message = "failed to unmarshal BackendData of lease {Lease}: {Error}")]
    private static partial void LogBadBackendData(ILogger logger, string lease, string? error);

    [LoggerMessage(EventId = 4208, Level = LogLevel.Error, Message = "failed to run command: {Command} Err: {Error} Output: {Output}")]
    private static partial void LogFailed(ILogger logger, string command, string? error, string output);
}
