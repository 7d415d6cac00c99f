using System.Globalization;
using System.Net;
using Flannel.Testing.Namespaces;

namespace Flannel.EndToEnd.Tests;

/// <summary>
/// Scrapes a running flanneld's <c>/metrics</c> (on its health port, as Prometheus would) and parses it with the
/// Prometheus project's own parser (python3-prometheus-client), so the exposition is checked by a real consumer,
/// not by our own reading of the format.
/// </summary>
public sealed class MetricsScrapeTests
{
    private sealed record Sample(string Family, string Type, string Name, string Labels, double Value);

    [Fact]
    public async Task Metrics_on_the_health_port_parse_as_Prometheus_text_and_report_the_agents_state()
    {
        VirtualCluster.RequirePrerequisites();
        // Debian's interpreter, for which python3-prometheus-client is installed; a python3 earlier on PATH (pyenv,
        // a virtualenv) would not see the package.
        string python = Flannel.Testing.Privileged.RequireExecutable("/usr/bin/python3");
        Flannel.Testing.Privileged.RequireExecutable("curl");
        await using VirtualCluster cluster = await VirtualCluster.StartAsync("vxlan");
        NetworkNamespace node1 = cluster.Nodes["node1"];
        string url = $"http://{cluster.NodeAddresses["node1"]}:{VirtualCluster.HealthzPort}/metrics";

        // StartAsync returned once every node routes to every other, so node1 has programmed both peers.
        IReadOnlyList<Sample> samples = await ScrapeAsync(node1, python, url);
        string Dump() => string.Join('\n', samples.Select(s => $"{s.Name}{s.Labels} {s.Value}")) + "\n" + cluster.FlanneldLog("node1");

        Assert.Equal("gauge", Single(samples, "flannel_peers").Type);
        Assert.Equal(2, Single(samples, "flannel_peers").Value);
        Assert.Equal(1, Single(samples, "flannel_lease_acquisitions_total").Value);
        Assert.Equal("counter", Single(samples, "flannel_lease_acquisitions_total").Type);
        Assert.Equal(0, Single(samples, "flannel_lease_renewals_total").Value); // exported from the start, at 0
        double timeToReady = Single(samples, "flannel_time_to_ready_seconds").Value;
        Assert.True(timeToReady is > 0 and < 120, $"time to ready {timeToReady} s\n{Dump()}");
        Assert.True(Single(samples, "flannel_lease_age_seconds").Value >= 0, Dump());

        // The kernel writes of the start-up and of both peers (neighbour, FDB entry, route each).
        Assert.True(samples.Where(s => s.Name == "flannel_netlink_programmed_objects_total").Sum(s => s.Value) >= 6, Dump());
        Assert.Contains(samples, s => s.Name == "flannel_netlink_programmed_objects_total" && s.Labels.Contains("\"operation\":\"RTM_NEWROUTE\"", StringComparison.Ordinal));

        // The agent hands the backend its initial lease snapshot as one batch.
        Assert.True(Single(samples, "flannel_lease_events_apply_duration_seconds_count").Value >= 1, Dump());

        // No series names a peer: the exposition does not grow with the cluster.
        foreach (string peer in new[] { "node2", "node3" })
        {
            Assert.DoesNotContain(samples, s => s.Labels.Contains(cluster.NodeAddresses[peer], StringComparison.Ordinal)
                || s.Labels.Contains(cluster.Subnet(peer).BaseAddress.ToString(), StringComparison.Ordinal));
        }

        // A peer leaves: the gauge follows and the counters only grow.
        await cluster.StopFlanneldAsync("node3");
        IPNetwork gone = cluster.Subnet("node3");
        string key = $"{VirtualCluster.Prefix}/subnets/{gone.BaseAddress}-{gone.PrefixLength}";
        await cluster.EtcdctlAsync("del", key);
        await VirtualCluster.WaitUntilAsync(
            async () => Single(await ScrapeAsync(node1, python, url), "flannel_peers").Value == 1,
            $"flannel_peers to drop to 1 after deleting {key}\n{cluster.FlanneldLog("node1")}");
        IReadOnlyList<Sample> after = await ScrapeAsync(node1, python, url);
        Assert.True(after.Where(s => s.Name == "flannel_netlink_programmed_objects_total").Sum(s => s.Value)
            >= samples.Where(s => s.Name == "flannel_netlink_programmed_objects_total").Sum(s => s.Value));

        // Event → kernel latency as a histogram with second-scale buckets. Peers already leased when flanneld starts
        // are programmed by the start-up reconciliation, so only this deletion is sure to have gone the event path.
        Sample count = Single(after, "flannel_backend_event_duration_seconds_count");
        Assert.Equal("histogram", count.Type);
        Assert.True(count.Value >= 1, string.Join('\n', after.Select(s => $"{s.Name}{s.Labels} {s.Value}")));
        Assert.Contains(after, s => s.Name == "flannel_backend_event_duration_seconds_bucket" && s.Labels.Contains("\"le\":\"0.01\"", StringComparison.Ordinal));
        Assert.Equal(count.Value, after.Single(s => s.Name == "flannel_backend_event_duration_seconds_bucket" && s.Labels.Contains("\"le\":\"+Inf\"", StringComparison.Ordinal)).Value);
    }

    private static Sample Single(IReadOnlyList<Sample> samples, string name)
    {
        Sample[] matches = samples.Where(s => s.Name == name).ToArray();
        Assert.True(matches.Length == 1, $"{matches.Length} samples named {name} in:\n{string.Join('\n', samples.Select(s => s.Name + s.Labels))}");
        return matches[0];
    }

    /// <summary>Fetches <paramref name="url"/> from inside the node and parses the body with prometheus_client.</summary>
    private static async Task<IReadOnlyList<Sample>> ScrapeAsync(NetworkNamespace node, string python, string url)
    {
        string file = Path.Combine(Path.GetTempPath(), $"flannel-metrics-{Guid.NewGuid():N}.txt");
        try
        {
            string headers = await node.RunCheckedAsync("curl", "--silent", "--show-error", "--fail", "--max-time", "5", "--dump-header", "-", "--output", file, url);
            Assert.Contains("text/plain; version=0.0.4", headers, StringComparison.OrdinalIgnoreCase);
            string script = Path.Combine(AppContext.BaseDirectory, "prometheus_families.py");
            ProcessResult parsed = await NetworkNamespace.RunProcessAsync([python, script, file], CancellationToken.None);
            Assert.True(parsed.ExitCode == 0, $"prometheus_client could not parse /metrics: {parsed.StandardError}\n{await File.ReadAllTextAsync(file)}");
            return parsed.StandardOutput
                .Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(line => line.Split(' ', 5))
                .Select(f => new Sample(f[0], f[1], f[2], f[4], double.Parse(f[3], CultureInfo.InvariantCulture)))
                .ToList();
        }
        finally
        {
            File.Delete(file);
        }
    }
}
