using System.Diagnostics;
using System.Text.Json;
using Flannel.Testing;
using Flannel.Testing.Namespaces;

namespace Flannel.EndToEnd.Tests;

/// <summary>
/// The fabric health features on three real flanneld processes: the per-peer probes, <c>flanneld status</c> over the
/// agents' unix sockets, and <c>flanneld doctor</c>, against an overlay broken by nft (UDP 8472 dropped between two
/// nodes) and a device MTU changed by hand.
/// </summary>
public sealed class FabricHealthTests
{
    // Probe often, so that detection takes seconds; every figure is reported, none asserted.
    private static readonly string[] ProbeFlags = ["--probe-interval=3s", "--probe-timeout=500ms"];

    [Theory]
    [InlineData("vxlan", 8472)]
    [InlineData("wireguard", 51820)]
    public async Task Status_reports_every_peer_reachable_then_exactly_the_broken_pair_as_an_overlay_only_failure_then_recovers(string backend, int port)
    {
        VirtualCluster.RequirePrerequisites();
        Privileged.RequireExecutable("nft");
        if (backend == "wireguard")
        {
            Privileged.RequireExecutable("wireguard-go");
        }

        await using VirtualCluster cluster = await VirtualCluster.StartAsync(backend, ProbeFlags);

        // 1. All peers reachable, from every node; exit code 0.
        foreach (string node in cluster.Nodes.Keys)
        {
            await WaitForStatusAsync(cluster, node, s => Summary(s).GetProperty("reachable").GetInt32() == 2, "2/2 peers reachable");
            (int exit, string text) = await StatusAsync(cluster, node, json: false);
            Assert.True(exit == 0, $"flanneld status on {node} exited {exit}:\n{text}");
            Assert.Contains("2/2 peers reachable", text, StringComparison.Ordinal);
            foreach (JsonElement peer in (await StatusJsonAsync(cluster, node)).RootElement.GetProperty("peers").EnumerateArray())
            {
                Assert.Equal("reachable", peer.GetProperty("overlay").GetProperty("state").GetString());
                Assert.Equal("reachable", peer.GetProperty("underlay").GetProperty("state").GetString());
                Assert.Equal("programmed", peer.GetProperty("kernel").GetProperty("state").GetString());
            }
        }

        // 2. Drop the backend's UDP port between node1 and node2 on node2 (both directions), on the underlay.
        NetworkNamespace node2 = cluster.Nodes["node2"];
        string node1Address = cluster.NodeAddresses["node1"];
        await node2.RunCheckedAsync("nft", "add", "table", "inet", "flannel-e2e-break");
        await node2.RunCheckedAsync("nft", "add", "chain", "inet", "flannel-e2e-break", "in", "{ type filter hook input priority -10 ; }");
        await node2.RunCheckedAsync("nft", "add", "chain", "inet", "flannel-e2e-break", "out", "{ type filter hook output priority -10 ; }");
        await node2.RunCheckedAsync("nft", "add", "rule", "inet", "flannel-e2e-break", "in", "ip", "saddr", node1Address, "udp", "dport", $"{port}", "drop");
        await node2.RunCheckedAsync("nft", "add", "rule", "inet", "flannel-e2e-break", "out", "ip", "daddr", node1Address, "udp", "dport", $"{port}", "drop");
        var broken = Stopwatch.StartNew();

        string node1Subnet = cluster.Subnet("node1").ToString();
        string node2Subnet = cluster.Subnet("node2").ToString();
        string node3Subnet = cluster.Subnet("node3").ToString();
        await WaitForStatusAsync(cluster, "node1", s => HealthOf(s, node2Subnet) == "overlay-only-failure", "node2 as an overlay-only failure on node1");
        await WaitForStatusAsync(cluster, "node2", s => HealthOf(s, node1Subnet) == "overlay-only-failure", "node1 as an overlay-only failure on node2");
        TimeSpan detected = broken.Elapsed;

        // Exactly that pair: node3 sees both peers reachable, and node1/node2 still reach node3.
        JsonElement status1 = (await StatusJsonAsync(cluster, "node1")).RootElement;
        Assert.Equal("reachable", HealthOf(status1, node3Subnet));
        JsonElement peer2 = Peer(status1, node2Subnet);
        Assert.Equal("unreachable", peer2.GetProperty("overlay").GetProperty("state").GetString());
        Assert.Equal("reachable", peer2.GetProperty("underlay").GetProperty("state").GetString());
        Assert.Equal("programmed", peer2.GetProperty("kernel").GetProperty("state").GetString());
        Assert.Equal(1, Summary(status1).GetProperty("overlayOnlyFailures").GetInt32());
        JsonElement status3 = (await StatusJsonAsync(cluster, "node3")).RootElement;
        Assert.Equal(2, Summary(status3).GetProperty("reachable").GetInt32());
        Assert.Equal("reachable", HealthOf((await StatusJsonAsync(cluster, "node2")).RootElement, node3Subnet));

        // The table names the failure and the exit code makes it a probe.
        (int code, string table) = await StatusAsync(cluster, "node1", json: false);
        Assert.True(code == 1, $"flanneld status exited {code} with an overlay-only failure:\n{table}");
        Assert.Contains("1/2 peers reachable, 1 overlay-only failure", table, StringComparison.Ordinal);
        Assert.Contains("OVERLAY-ONLY FAILURE", table, StringComparison.Ordinal);

        // The agent logged the signature once, with the likely cause.
        string log = cluster.FlanneldLog("node1");
        Assert.Contains("answers over the underlay but not over the overlay", log, StringComparison.Ordinal);
        Assert.Contains($"UDP port ({port}) filtered", log, StringComparison.Ordinal);

        // 3. Heal: the pair recovers.
        await node2.RunCheckedAsync("nft", "delete", "table", "inet", "flannel-e2e-break");
        var healed = Stopwatch.StartNew();
        await WaitForStatusAsync(cluster, "node1", s => Summary(s).GetProperty("reachable").GetInt32() == 2, "node1: 2/2 reachable after healing");
        await WaitForStatusAsync(cluster, "node2", s => Summary(s).GetProperty("reachable").GetInt32() == 2, "node2: 2/2 reachable after healing");
        Assert.Contains("is reachable again over the overlay", cluster.FlanneldLog("node1"), StringComparison.Ordinal);
        (code, table) = await StatusAsync(cluster, "node1", json: false);
        Assert.True(code == 0, $"flanneld status exited {code} after healing:\n{table}");
        TestContext.Current.SendDiagnosticMessage($"{backend}: overlay-only failure detected after {detected.TotalSeconds:0.0} s, recovery after {healed.Elapsed.TotalSeconds:0.0} s (probe interval 3 s)");
    }

    [Fact]
    public async Task Doctor_finds_nothing_wrong_on_a_healthy_node_and_names_a_device_mtu_changed_by_hand()
    {
        VirtualCluster.RequirePrerequisites();
        await using VirtualCluster cluster = await VirtualCluster.StartAsync("vxlan", ProbeFlags);

        (int exit, string report) = await cluster.DoctorAsync("node3");
        Assert.True(exit == 0, $"flanneld doctor found errors on a healthy node:\n{report}");
        Assert.Contains("the agent's status socket", report, StringComparison.Ordinal);

        await cluster.Nodes["node3"].RunCheckedAsync("ip", "link", "set", "dev", "flannel.1", "mtu", "1400");
        (exit, report) = await cluster.DoctorAsync("node3");
        Assert.True(exit == 1, $"flanneld doctor exited {exit} with a wrong MTU:\n{report}");
        Assert.Contains("flannel.1", report, StringComparison.Ordinal);
        Assert.Contains("1400", report, StringComparison.Ordinal);
        Assert.Contains("ip link set dev flannel.1 mtu 1450", report, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_socket_answers_garbage_and_oversized_requests_with_an_error_and_keeps_serving()
    {
        VirtualCluster.RequirePrerequisites();
        await using VirtualCluster cluster = await VirtualCluster.StartAsync("vxlan", ProbeFlags);
        string socket = cluster.StatusSocket("node1");

        foreach (byte[] request in new[] { "GET / HTTP/1.1\r\n\r\n"u8.ToArray(), new byte[64 * 1024], [0xff, 0xfe, 0x00, (byte)'\n'] })
        {
            using var client = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
            await client.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(socket));
            try
            {
                await client.SendAsync(request);
            }
            catch (System.Net.Sockets.SocketException)
            {
                // The server may close on an oversized request before reading all of it.
            }

            byte[] buffer = new byte[4096];
            int read = await client.ReceiveAsync(buffer);
            Assert.Contains("\"error\"", System.Text.Encoding.UTF8.GetString(buffer, 0, read), StringComparison.Ordinal);
        }

        (int exit, string text) = await StatusAsync(cluster, "node1", json: false);
        Assert.True(exit is 0 or 1, $"the agent stopped answering after bad requests (exit {exit}):\n{text}");
        Assert.Contains("peers reachable", text, StringComparison.Ordinal);
    }

    private static JsonElement Summary(JsonElement status) => status.GetProperty("summary");

    private static JsonElement Peer(JsonElement status, string subnet) =>
        status.GetProperty("peers").EnumerateArray().Single(p => p.GetProperty("lease").GetProperty("subnet").GetString() == subnet);

    private static string? HealthOf(JsonElement status, string subnet) => Peer(status, subnet).GetProperty("health").GetString();

    private static Task<(int ExitCode, string Output)> StatusAsync(VirtualCluster cluster, string node, bool json) =>
        cluster.FlanneldSubcommandAsync(node, json ? ["status", "-o", "json", "--socket", cluster.StatusSocket(node)] : ["status", "--socket", cluster.StatusSocket(node)]);

    private static async Task<JsonDocument> StatusJsonAsync(VirtualCluster cluster, string node)
    {
        (int exit, string output) = await StatusAsync(cluster, node, json: true);
        Assert.True(exit is 0 or 1, $"flanneld status -o json on {node} exited {exit}: {output}");
        return JsonDocument.Parse(output);
    }

    private static async Task WaitForStatusAsync(VirtualCluster cluster, string node, Func<JsonElement, bool> condition, string what)
    {
        // Not VirtualCluster.WaitUntilAsync: the failure message must carry the last status seen.
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        string last = "";
        while (DateTime.UtcNow < deadline)
        {
            (int exit, string output) = await StatusAsync(cluster, node, json: true);
            last = output;
            if (exit is 0 or 1)
            {
                using JsonDocument document = JsonDocument.Parse(output);
                if (condition(document.RootElement))
                {
                    return;
                }
            }

            await Task.Delay(250);
        }

        Assert.Fail($"timed out waiting for {what} on {node}; last status:\n{last}\n{cluster.FlanneldLog(node)}");
    }
}
