using System.Globalization;
using System.Text;
using Flannel.Agent.Probing;
using Flannel.Agent.Status;
using Flannel.Backends;

namespace Flannel.Host.Status;

/// <summary>
/// <c>flanneld status</c>: reads the running agent's fabric status from its unix socket and prints a table (or the
/// JSON document with <c>-o json</c>). The exit code makes it a probe for scripts: 0 when no peer is unreachable,
/// 1 when at least one is (over the overlay), 3 when no agent answers, 2 for a usage error.
/// </summary>
internal static class StatusCommand
{
    public const string Name = "status";

    /// <summary>Some peer is unreachable.</summary>
    public const int UnreachableExitCode = 1;

    /// <summary>A usage error (Go's flag package exits 2).</summary>
    public const int UsageExitCode = 2;

    /// <summary>No agent answered on the socket.</summary>
    public const int UnavailableExitCode = 3;

    public const string Usage = """
        Usage: flanneld status [-o table|json] [--socket PATH] [--timeout DURATION]
          Prints the fabric status of the flanneld running on this node: its lease, backend, device and store, and per
          peer its kernel state and whether it answers over the overlay and the underlay.
          -o string          output format: table or json (default "table")
          -socket string     the agent's status socket (default "/run/flannel/flannel.sock")
          -timeout duration  how long to wait for the agent (default 5s)
        Exit code: 0 all peers reachable (or not probed yet), 1 some peer unreachable, 2 usage error, 3 no agent answers.

        """;

    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        string socket;
        bool json;
        TimeSpan timeout;
        try
        {
            SubcommandFlags flags = SubcommandFlags.Parse(args, ["o", "output", "socket", "timeout"], [], passUnknown: false);
            if (flags.HelpRequested)
            {
                await output.WriteAsync(Usage).ConfigureAwait(false);
                return 0;
            }

            socket = flags.Get("socket", StatusSocketOptions.DefaultPath);
            json = flags.JsonOutput();
            timeout = flags.GetDuration("timeout", TimeSpan.FromSeconds(5));
        }
        catch (ArgumentException e)
        {
            await error.WriteLineAsync(e.Message).ConfigureAwait(false);
            await error.WriteAsync(Usage).ConfigureAwait(false);
            return UsageExitCode;
        }

        FabricStatus status;
        try
        {
            byte[] document = await StatusSocketClient.GetStatusJsonAsync(socket, timeout, cancellationToken).ConfigureAwait(false);
            status = FabricStatus.ParseJson(document);
            if (json)
            {
                await output.WriteAsync(Encoding.UTF8.GetString(document)).ConfigureAwait(false);
            }
            else
            {
                await output.WriteAsync(Render(status)).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is StatusUnavailableException or System.Text.Json.JsonException)
        {
            await error.WriteLineAsync($"flanneld status: {e.Message}").ConfigureAwait(false);
            return UnavailableExitCode;
        }

        return status.Peers.Any(p => p.Health is PeerHealth.OverlayOnlyFailure or PeerHealth.Unreachable) ? UnreachableExitCode : 0;
    }

    /// <summary>The human form: the node, then one row per peer, then the summary line.</summary>
    internal static string Render(FabricStatus status)
    {
        var text = new StringBuilder();
        NodeStatus node = status.Node;
        LeaseStatus? lease = node.Lease;
        text.Append("Node:      ").Append(node.Name).Append(node.Ready ? " (ready)" : $" (not ready: {node.NotReadyReason})").Append('\n');
        if (lease is not null)
        {
            text.Append("Lease:     ").Append(lease.Subnet ?? lease.IPv6Subnet).Append(", public IP ").Append(lease.PublicIP ?? lease.PublicIPv6);
            if (lease.Expiration is { } expires)
            {
                text.Append(", expires ").Append(expires.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)).Append('Z');
            }

            text.Append('\n');
        }

        text.Append("Backend:   ").Append(node.Backend ?? "?");
        if (node.Device is not null)
        {
            text.Append(", device ").Append(node.Device);
        }

        if (node.Mtu is { } mtu)
        {
            text.Append(", MTU ").Append(mtu.ToString(CultureInfo.InvariantCulture));
        }

        if (node.Interface is { } iface)
        {
            text.Append(", via ").Append(iface.Name).Append(' ').Append(iface.Address).Append(" (MTU ").Append(iface.Mtu.ToString(CultureInfo.InvariantCulture)).Append(')');
        }

        text.Append('\n');
        text.Append("Network:   ").Append(node.Network ?? node.IPv6Network ?? "?").Append('\n');
        text.Append("Store:     ").Append(node.Store.Healthy ? "healthy" : $"unhealthy: {node.Store.Problem}").Append('\n');
        text.Append("Probes:    ").Append(status.Probes is { } probes
            ? string.Create(CultureInfo.InvariantCulture, $"every peer every {probes.IntervalSeconds:0.##} s over the overlay and the underlay, timeout {probes.TimeoutMilliseconds:0} ms ({probes.PeersPerSecond:0.##} peers/s)")
            : "off").Append("\n\n");

        string[] header = ["PEER", "PUBLIC IP", "KERNEL", "OVERLAY", "UNDERLAY", "HEALTH"];
        List<string[]> rows = [header];
        foreach (PeerStatus peer in status.Peers)
        {
            rows.Add(
            [
                peer.Lease.Subnet ?? peer.Lease.IPv6Subnet ?? peer.Lease.Key,
                peer.Lease.PublicIP ?? peer.Lease.PublicIPv6 ?? "-",
                KernelText(peer.Kernel),
                PathText(peer.Overlay, status.GeneratedAt),
                PathText(peer.Underlay, status.GeneratedAt),
                HealthText(peer.Health),
            ]);
        }

        int[] widths = [.. Enumerable.Range(0, header.Length).Select(c => rows.Max(r => r[c].Length))];
        foreach (string[] row in rows)
        {
            for (int c = 0; c < row.Length; c++)
            {
                text.Append(c == row.Length - 1 ? row[c] : row[c].PadRight(widths[c] + 2));
            }

            text.Append('\n');
        }

        if (status.Peers.Count == 0)
        {
            text.Append("(no peers)\n");
        }

        text.Append('\n').Append(status.Summary.Text).Append('\n');
        return text.ToString();
    }

    private static string KernelText(PeerKernelStatus kernel) => kernel.State switch
    {
        PeerKernelState.Programmed => "programmed",
        PeerKernelState.Missing => "missing",
        PeerKernelState.Drifted => "drifted",
        _ => "unknown",
    };

    private static string PathText(PathStatus? path, DateTimeOffset now)
    {
        if (path is null)
        {
            return "-";
        }

        string loss = path.LossPercent is { } percent ? string.Create(CultureInfo.InvariantCulture, $" {percent:0.#}% loss") : string.Empty;
        string flapping = path.Flapping ? " FLAPPING" : string.Empty;
        return path.State switch
        {
            Reachability.Reachable => string.Create(CultureInfo.InvariantCulture, $"ok {path.RttMs?.Avg ?? 0:0.###} ms{loss}{flapping}"),
            Reachability.Unreachable => $"DOWN {Ago(path.Since, now)} ({path.Last}){loss}{flapping}",
            _ => path.Last is { } last ? $"? ({last})" : "? (not probed yet)",
        };
    }

    private static string Ago(DateTimeOffset? since, DateTimeOffset now)
    {
        if (since is not { } at)
        {
            return string.Empty;
        }

        TimeSpan age = now - at;
        string span = age.TotalSeconds < 90 ? $"{Math.Max(0, (int)age.TotalSeconds)}s"
            : age.TotalMinutes < 90 ? $"{(int)age.TotalMinutes}m"
            : $"{(int)age.TotalHours}h";
        return $"for {span}";
    }

    private static string HealthText(PeerHealth health) => health switch
    {
        PeerHealth.Reachable => "reachable",
        PeerHealth.OverlayOnlyFailure => "OVERLAY-ONLY FAILURE",
        PeerHealth.Unreachable => "UNREACHABLE",
        _ => "unknown",
    };
}
