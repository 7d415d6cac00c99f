using System.ComponentModel;
using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Flannel.Backends.WireGuard.Userspace;

/// <summary>
/// Starts wireguard-go for a device the way <c>wg-quick</c> does (<c>wireguard-go DEVICE</c>, which creates the TUN
/// device and the configuration socket and then daemonises), inside the node's network namespace and, when the
/// node has one, its private mount namespace. A daemon that is already serving the device is reused.
/// </summary>
/// <remarks>
/// wireguard-go always puts its socket in /var/run/wireguard (it watches that path and exits when the file goes),
/// so several nodes on one machine would all create /var/run/wireguard/flannel-wg.sock. Each node therefore needs
/// its own /var/run/wireguard: either the whole agent runs in a mount namespace with a private tmpfs there (one
/// flanneld per node; the defaults then just work), or, for several agents in one process, each node names a pinned
/// mount namespace (<see cref="WireGuardGoLaunchOptions.MountNamespace"/>) in which /var/run/wireguard is bound to a
/// directory the agent sees (the <see cref="WireGuardUapiClient.SocketDirectory"/> of the client it is given). See
/// docs/backends.md.
/// </remarks>
public sealed partial class WireGuardGoLauncher
{
    private readonly WireGuardGoLaunchOptions _options;
    private readonly WireGuardUapiClient _client;
    private readonly ILogger _logger;

    /// <summary>Creates a launcher; <paramref name="client"/> reaches the sockets (its directory is the node's /var/run/wireguard).</summary>
    public WireGuardGoLauncher(WireGuardGoLaunchOptions options, WireGuardUapiClient client, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(logger);
        _options = options;
        _client = client;
        _logger = logger;
    }

    /// <summary>The argument vector that starts wireguard-go for <paramref name="device"/>.</summary>
    public IReadOnlyList<string> CommandFor(string device)
    {
        var argv = new List<string>();
        if (_options.NetworkNamespace is not null || _options.MountNamespace is not null)
        {
            argv.Add("nsenter");
            if (_options.MountNamespace is { } mount)
            {
                argv.Add("--mount=" + mount);
            }

            if (_options.NetworkNamespace is { } net)
            {
                argv.Add("--net=" + (net.Contains('/', StringComparison.Ordinal) ? net : "/var/run/netns/" + net));
            }

            argv.Add("--");
        }

        argv.Add(_options.Executable);
        argv.Add(device);
        return argv;
    }

    /// <summary>
    /// Makes sure a wireguard-go serves <paramref name="device"/>: returns false when one already did, true when it
    /// was started.
    /// </summary>
    /// <exception cref="WireGuardUapiException">wireguard-go is missing, failed, or did not open its socket in time.</exception>
    public async Task<bool> EnsureRunningAsync(string device, CancellationToken cancellationToken)
    {
        if (await _client.IsListeningAsync(device, cancellationToken).ConfigureAwait(false))
        {
            string socket = _client.SocketPath(device);
            LogFoundRunning(_logger, device, socket);
            return false;
        }

        IReadOnlyList<string> argv = CommandFor(device);
        var start = new ProcessStartInfo(argv[0]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        for (int i = 1; i < argv.Count; i++)
        {
            start.ArgumentList.Add(argv[i]);
        }

        // The daemon must not inherit a foreground flag from our environment; it detaches on its own.
        start.Environment.Remove("WG_PROCESS_FOREGROUND");
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new WireGuardUapiException($"could not start {argv[0]}");
        }
        catch (Win32Exception e)
        {
            throw new WireGuardUapiException($"could not start {string.Join(' ', argv)}: {e.Message} (is wireguard-go installed?)", e);
        }

        using (process)
        {
            Task<string> stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            Task<string> stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.StartTimeout);
            try
            {
                // The first process creates the device and the socket, hands both to a detached child and exits.
                await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                process.Kill(entireProcessTree: true);
                throw new WireGuardUapiException($"{string.Join(' ', argv)} did not return within {_options.StartTimeout.TotalSeconds:0}s");
            }

            string output = ((await stdout.ConfigureAwait(false)) + (await stderr.ConfigureAwait(false))).Trim();
            if (process.ExitCode != 0)
            {
                throw new WireGuardUapiException($"{string.Join(' ', argv)} exited with status {process.ExitCode}: {LastLines(output)}");
            }
        }

        long deadline = Environment.TickCount64 + (long)_options.StartTimeout.TotalMilliseconds;
        while (!await _client.IsListeningAsync(device, cancellationToken).ConfigureAwait(false))
        {
            if (Environment.TickCount64 > deadline)
            {
                throw new WireGuardUapiException($"wireguard-go was started for {device} but {_client.SocketPath(device)} did not accept connections within {_options.StartTimeout.TotalSeconds:0}s");
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }

        string command = string.Join(' ', argv);
        string path = _client.SocketPath(device);
        LogStarted(_logger, device, command, path);
        return true;
    }

    private static string LastLines(string output)
    {
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(static l => !l.StartsWith('│') && !l.StartsWith('┌') && !l.StartsWith('└')).ToArray();
        return lines.Length == 0 ? "(no output)" : string.Join(" | ", lines.TakeLast(3));
    }

    [LoggerMessage(EventId = 4110, Level = LogLevel.Information, Message = "wireguard-go already serves {Device} ({Socket}); reusing it")]
    private static partial void LogFoundRunning(ILogger logger, string device, string socket);

    [LoggerMessage(EventId = 4111, Level = LogLevel.Information, Message = "Started wireguard-go for {Device} ({Command}); configuring it over {Socket}")]
    private static partial void LogStarted(ILogger logger, string device, string command, string socket);
}

/// <summary>How wireguard-go is started and where its sockets are.</summary>
public sealed record WireGuardGoLaunchOptions
{
    /// <summary>The wireguard-go executable (Debian: /usr/bin/wireguard-go).</summary>
    public string Executable { get; init; } = "wireguard-go";

    /// <summary>The node's network namespace (name or path); null when the agent's process already runs in it.</summary>
    public string? NetworkNamespace { get; init; }

    /// <summary>A pinned mount namespace (a path bound with <c>unshare --mount=PATH</c>) with the node's private /var/run/wireguard; null to use the process's.</summary>
    public string? MountNamespace { get; init; }

    /// <summary>How long wireguard-go may take to create the device and open its socket.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(15);
}
