using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Flannel.Store.Kube.Tests.ApiDouble;
using Flannel.Store.Kube.Tests.Fixtures;

namespace Flannel.Scale;

/// <summary>flanneld in kube mode against the API double holding N worker nodes of about 5 KB each.</summary>
internal static class KubeScale
{
    public static async Task RunAsync(Flanneld flanneld, int nodes, int updates, string work)
    {
        await using KubeApiServerDouble server = await KubeApiServerDouble.StartAsync();
        server.AddNode(NodeFixtures.Node("node-0", "198.18.0.1", "10.0.0.0/24"));
        long fixtureBytes = 0;
        for (int i = 0; i < nodes; i++)
        {
            (string subnet, _, string publicIP, string mac) = Peers.Of(i);
            string json = WithImages(NodeFixtures.Node($"node-{i + 1}", publicIP, subnet, NodeFixtures.FlannelVxlanAnnotations(publicIP, mac)), i);
            fixtureBytes += json.Length;
            server.AddNode(json);
        }

        string netConf = Path.Combine(work, "net-conf.json");
        await File.WriteAllTextAsync(netConf, """{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}""");
        string subnetFile = Path.Combine(work, $"subnet-{flanneld.Label}.env");
        string log = Path.Combine(work, $"flanneld-kube-{flanneld.Label}.log");
        Console.WriteLine($"kube API double: {nodes} peer nodes, {fixtureBytes / nodes} bytes each on average; flanneld {flanneld.Label}");

        try
        {
            await Measure.RunAsync("ip", "link", "del", "flannel.1");
        }
        catch (InvalidOperationException)
        {
            // Not there.
        }

        var clock = new Stopwatch();
        await using RouteMonitor routes = RouteMonitor.Start(clock, "flannel.1");
        clock.Start();
        Process process = Measure.Start(flanneld.Path, flanneld.Args([
            "--kube-subnet-mgr", $"--kube-api-url={server.Url}", $"--net-config-path={netConf}", "--iface=eth0", "--ip-masq",
            $"--subnet-file={subnetFile}",
        ]), log, flanneld.Env(new Dictionary<string, string> { ["NODE_NAME"] = "node-0" }));
        try
        {
            TimeSpan converged = await routes.WaitForAsync(nodes, TimeSpan.FromSeconds(300), () => Measure.Tail(log));
            int requests = server.Requests.Count;
            (long startPeak, _) = (Measure.Memory(process.Id).Peak, 0);
            await Task.Delay(TimeSpan.FromSeconds(5));
            (long steady, _) = Measure.Memory(process.Id);
            (long anon, long file) = Measure.RssParts(process.Id);
            Console.WriteLine($"converged in {converged.TotalMilliseconds:0} ms with {requests} API requests; RSS steady {Measure.Mib(steady)} MiB (anon {Measure.Mib(anon)}, file {Measure.Mib(file)}; start-up peak {Measure.Mib(startPeak)} MiB)");
            if (Measure.LateReading > TimeSpan.Zero)
            {
                TimeSpan cpu = Measure.CpuTime(process.Id);
                await Task.Delay(Measure.LateReading);
                (long late, _) = Measure.Memory(process.Id);
                (long lateAnon, long lateFile) = Measure.RssParts(process.Id);
                double idleCpu = (Measure.CpuTime(process.Id) - cpu).TotalMilliseconds / Measure.LateReading.TotalSeconds;
                Console.WriteLine($"RSS {Measure.LateReading.TotalSeconds:0} s later {Measure.Mib(late)} MiB (anon {Measure.Mib(lateAnon)}, file {Measure.Mib(lateFile)}); CPU in between {idleCpu:0.0} ms/s");
            }

            await Measure.GcDumpAsync(process.Id, $"kube-{flanneld.Label}-steady");

            // A re-list of every node: the watch expires (410), flanneld lists all N again.
            Measure.ResetPeak(process.Id);
            int lists = ListRequests(server);
            server.ExpireWatches();
            await Measure.WaitUntilAsync(() => ListRequests(server) > lists, TimeSpan.FromSeconds(60), "the re-list", () => Measure.Tail(log));
            await WaitForQuietAsync(process.Id);
            (long afterRelist, long relistPeak) = Measure.Memory(process.Id);
            Console.WriteLine($"re-list of {nodes} nodes: RSS peak {Measure.Mib(relistPeak)} MiB, after {Measure.Mib(afterRelist)} MiB");

            // No-op updates: a kubelet heartbeat on a random peer, U of them over 5 s, against 5 s of idling.
            TimeSpan window = TimeSpan.FromSeconds(5);
            TimeSpan idleStart = Measure.CpuTime(process.Id);
            await Task.Delay(window);
            TimeSpan idle = Measure.CpuTime(process.Id) - idleStart;
            var random = new Random(7);
            TimeSpan busyStart = Measure.CpuTime(process.Id);
            var timer = Stopwatch.StartNew();
            for (int u = 0; u < updates; u++)
            {
                int peer = random.Next(nodes) + 1;
                string beat = DateTimeOffset.UnixEpoch.AddSeconds(u).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
                server.UpdateNode($"node-{peer}", n => n["status"]!["conditions"]![3]!["lastHeartbeatTime"] = beat);
                TimeSpan due = window * (u + 1) / updates;
                if (timer.Elapsed < due)
                {
                    await Task.Delay(due - timer.Elapsed);
                }
            }

            await WaitForQuietAsync(process.Id);
            TimeSpan busy = Measure.CpuTime(process.Id) - busyStart;
            TimeSpan span = timer.Elapsed; // the updates and the wait until flanneld is quiet again
            double net = (busy - (idle * (span / window))).TotalMilliseconds;
            string perUpdate = updates > 0 ? $"{net / updates:0.000} ms CPU per update" : "no updates, so no cost per update";
            Console.WriteLine($"{updates} no-op node updates: {busy.TotalMilliseconds:0} ms CPU over {span.TotalSeconds:0.0} s, less idling ({idle.TotalMilliseconds:0} ms per 5 s) = {perUpdate}");
            (long end, _) = Measure.Memory(process.Id);
            Console.WriteLine($"RSS at the end {Measure.Mib(end)} MiB; routes added {routes.Added}");
        }
        finally
        {
            await Measure.StopAsync(process);
        }
    }

    private static int ListRequests(KubeApiServerDouble server) =>
        server.Requests.Count(r => r.Method == "GET" && r.Path == "/api/v1/nodes" && !r.Query.Contains("watch=true", StringComparison.Ordinal));

    /// <summary>
    /// Waits until what the process was doing is finished: two seconds in a row that used at most 200 ms of CPU each and
    /// differ by at most 20 ms. A fixed "no CPU for a second" never came with the prober on at 5,000 peers (it idles
    /// at 45-65 ms per second), so the wait ran into its 120 s limit at random, and the time per update with it.
    /// </summary>
    private static async Task WaitForQuietAsync(int pid)
    {
        TimeSpan last = Measure.CpuTime(pid);
        TimeSpan? previousSecond = null;
        for (int i = 0; i < 120; i++)
        {
            await Task.Delay(1000);
            TimeSpan now = Measure.CpuTime(pid);
            TimeSpan second = now - last;
            last = now;
            if (previousSecond is { } before && second <= TimeSpan.FromMilliseconds(200) && before <= TimeSpan.FromMilliseconds(200)
                && (second - before).Duration() <= TimeSpan.FromMilliseconds(20))
            {
                return;
            }

            previousSecond = second;
        }
    }

    /// <summary>A kubelet's image list (15 images with digests), which makes a node about as large as a real worker's (~5 KB).</summary>
    private static string WithImages(string nodeJson, int seed)
    {
        JsonObject node = JsonNode.Parse(nodeJson)!.AsObject();
        JsonArray images = [];
        for (int k = 0; k < 15; k++)
        {
            string digest = Convert.ToHexStringLower(BitConverter.GetBytes(((long)seed * 31) + k)).PadRight(64, 'a');
            images.Add(new JsonObject
            {
                ["names"] = new JsonArray($"registry.example.com/team/app-{k}@sha256:{digest}", $"registry.example.com/team/app-{k}:v1.{k}"),
                ["sizeBytes"] = 10_000_000 + (k * 1_000_003),
            });
        }

        node["status"]!["images"] = images;
        return node.ToJsonString();
    }
}
