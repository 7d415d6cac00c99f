using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

namespace Flannel.Scale;

/// <summary>flanneld against a local etcd holding N peer leases, cold start after cold start, and <c>ip -batch</c> on the same objects.</summary>
internal static class EtcdScale
{
    private const string EtcdUrl = "http://127.0.0.1:23790";
    private const string Prefix = "/coreos.com/network";

    public static async Task RunAsync(IReadOnlyList<Flanneld> binaries, int peers, int rounds, string work)
    {
        Process etcd = Measure.Start("etcd", [
            "--name", "scale", "--data-dir", Path.Combine(work, "etcd"),
            "--listen-client-urls", EtcdUrl, "--advertise-client-urls", EtcdUrl,
            "--listen-peer-urls", "http://127.0.0.1:23800", "--initial-advertise-peer-urls", "http://127.0.0.1:23800",
            "--initial-cluster", "scale=http://127.0.0.1:23800", "--log-level", "warn", "--logger", "zap",
        ], Path.Combine(work, "etcd.log"));
        using var http = new HttpClient { BaseAddress = new Uri(EtcdUrl) };
        try
        {
            await WaitForEtcdAsync(http);
            await SeedAsync(http, peers);
            Console.WriteLine($"etcd: {peers} peer leases under {Prefix}/subnets (Network 10.0.0.0/8, vxlan)");
            Console.WriteLine($"{"binary",-8} {"round",5} {"exec→subnet.env",16} {"exec→converged",15} {"first route",14} {"etcd RPCs",10} {"RSS steady",11} {"peak",8} {"CPU",8}");

            // One warm-up start of each binary, not counted: the first exec of a binary pays for the page cache.
            foreach (Flanneld flanneld in binaries)
            {
                await ColdStartAsync(flanneld, peers, work, http, round: 0);
            }

            // Round by round, every binary and then ip -batch: the kernel's share (most of the time) drifts with the
            // machine over minutes, and taking all of one side's rounds first would put that drift into the ratio.
            Dictionary<string, List<double>> converged = [];
            List<double> batch = [];
            List<double> alone = [];
            for (int round = 1; round <= rounds; round++)
            {
                foreach (Flanneld flanneld in binaries)
                {
                    (double subnetEnv, double converge) = await ColdStartAsync(flanneld, peers, work, http, round);
                    (converged.TryGetValue(flanneld.Label, out List<double>? list) ? list : converged[flanneld.Label] = []).Add(converge);
                }

                (double observed, double first) = await IpBatchAsync(peers, work, round, observed: true);
                (double unobserved, _) = await IpBatchAsync(peers, work, round, observed: false);
                batch.Add(observed);
                alone.Add(unobserved);
                Console.WriteLine($"{"ip -batch",-8} {round,5} {"",16} {observed,12:0} ms {first,11:0} ms   (with no route monitor listening: {unobserved:0} ms)");
            }

            double ipBatch = Measure.Median(batch);
            double ipBatchAlone = Measure.Median(alone);
            Console.WriteLine($"bridge -batch + ip -batch, {peers * 3} objects into a fresh namespace: median {ipBatch:0} ms ({Join(batch)}); with no route monitor listening: median {ipBatchAlone:0} ms ({Join(alone)})");
            foreach ((string label, List<double> times) in converged)
            {
                double median = Measure.Median(times);
                string perRound = string.Join(", ", times.Select((t, i) => (batch[i] / t).ToString("0.00", CultureInfo.InvariantCulture)));
                string perRoundAlone = string.Join(", ", times.Select((t, i) => (alone[i] / t).ToString("0.00", CultureInfo.InvariantCulture)));
                Console.WriteLine($"cold start to converged, {label}: median {median:0} ms; ip -batch / flanneld = {ipBatch / median:0.00} (round by round: {perRound}); against ip -batch with no monitor listening {ipBatchAlone / median:0.00} ({perRoundAlone})");
            }
        }
        finally
        {
            await Measure.StopAsync(etcd);
        }
    }

    private static async Task<(double SubnetEnv, double Converged)> ColdStartAsync(Flanneld flanneld, int peers, string work, HttpClient http, int round)
    {
        // Cold: no flannel.1 (its neighbours, FDB entries and routes go with it), no subnet.env.
        try
        {
            await Measure.RunAsync("ip", "link", "del", "flannel.1");
        }
        catch (InvalidOperationException)
        {
            // Not there.
        }

        string subnetFile = Path.Combine(work, "subnet.env");
        File.Delete(subnetFile);
        string log = Path.Combine(work, $"flanneld-{flanneld.Label}-{round}.log");
        double rpcsBefore = await EtcdRpcsAsync(http);

        var clock = new Stopwatch();
        await using RouteMonitor routes = RouteMonitor.Start(clock, "flannel.1");
        using var subnetWritten = new ManualResetEventSlim();
        using var watcher = new FileSystemWatcher(work, "subnet.env") { EnableRaisingEvents = true };
        TimeSpan? subnetAt = null;
        watcher.Renamed += (_, _) => { subnetAt ??= clock.Elapsed; subnetWritten.Set(); };
        watcher.Created += (_, _) => { subnetAt ??= clock.Elapsed; subnetWritten.Set(); };

        clock.Start();
        Process process = Measure.Start(flanneld.Path, flanneld.Args([
            $"--etcd-endpoints={EtcdUrl}", $"--etcd-prefix={Prefix}", "--iface=eth0", "--ip-masq", $"--subnet-file={subnetFile}",
        ]), log, flanneld.Env());
        try
        {
            await Measure.WaitUntilAsync(() => subnetWritten.IsSet, TimeSpan.FromSeconds(60), "subnet.env", () => Measure.Tail(log));
            double rpcsAtSubnet = await EtcdRpcsAsync(http);
            TimeSpan convergedAt = await routes.WaitForAsync(peers, TimeSpan.FromSeconds(300), () => Measure.Tail(log));
            await Task.Delay(TimeSpan.FromSeconds(5)); // steady: start-up garbage collected, renew timers idle
            (long rss, long peak) = Measure.Memory(process.Id);
            (long anon, long file) = Measure.RssParts(process.Id);
            (TimeSpan userCpu, TimeSpan systemCpu) = Measure.CpuTimes(process.Id);
            TimeSpan cpu = userCpu + systemCpu;
            if (round > 0)
            {
                Console.WriteLine($"{flanneld.Label,-8} {round,5} {subnetAt!.Value.TotalMilliseconds,13:0} ms {convergedAt.TotalMilliseconds,12:0} ms {routes.FirstAt?.TotalMilliseconds,11:0} ms {rpcsAtSubnet - rpcsBefore,10:0} {Measure.Mib(rss),7} MiB {Measure.Mib(peak),4} MiB {cpu.TotalSeconds,6:0.00} s  (user {userCpu.TotalSeconds:0.00} s; RSS anon {Measure.Mib(anon)} MiB, file {Measure.Mib(file)} MiB)");
                if (Measure.LateReading > TimeSpan.Zero)
                {
                    await Task.Delay(Measure.LateReading);
                    (long late, long latePeak) = Measure.Memory(process.Id);
                    (long lateAnon, _) = Measure.RssParts(process.Id);
                    double idleCpu = (Measure.CpuTime(process.Id) - cpu).TotalMilliseconds / Measure.LateReading.TotalSeconds;
                    Console.WriteLine($"{flanneld.Label,-8} {round,5} RSS {Measure.LateReading.TotalSeconds:0} s later {Measure.Mib(late)} MiB (anon {Measure.Mib(lateAnon)} MiB), peak {Measure.Mib(latePeak)} MiB; CPU in between {idleCpu:0.0} ms/s");
                }

                await Measure.GcDumpAsync(process.Id, $"etcd-{flanneld.Label}-{round}");
            }

            return (subnetAt!.Value.TotalMilliseconds, convergedAt.TotalMilliseconds);
        }
        finally
        {
            await Measure.StopAsync(process);

            // Give the subnet back, so the next round acquires one afresh (flanneld keeps its lease when it stops).
            if (File.Exists(subnetFile) && File.ReadLines(subnetFile).FirstOrDefault(l => l.StartsWith("FLANNEL_SUBNET=", StringComparison.Ordinal)) is { } line)
            {
                var own = System.Net.IPNetwork.Parse(line["FLANNEL_SUBNET=".Length..].Replace(".1/", ".0/", StringComparison.Ordinal));
                string key = $"{Prefix}/subnets/{own.BaseAddress}-{own.PrefixLength}";
                (await http.PostAsJsonAsync("/v3/kv/deleterange", new JsonObject { ["key"] = Convert.ToBase64String(Encoding.UTF8.GetBytes(key)) })).EnsureSuccessStatusCode();
            }
        }
    }

    /// <summary>
    /// Programs the same N peers with <c>ip -batch</c> into a fresh namespace with the same vxlan device. Timed as flanneld
    /// is, from the start of <c>bridge</c> to the N-th route's notification, with the same <see cref="RouteMonitor"/>
    /// listening; or, unobserved, to <c>ip</c>'s exit. Returns ms, and ms to the first route when observed.
    /// </summary>
    private static async Task<(double Elapsed, double FirstRoute)> IpBatchAsync(int peers, string work, int round, bool observed)
    {
        string ns = $"fscale-b{Environment.ProcessId}-{round}{(observed ? "m" : "")}";
        string batch = Path.Combine(work, "ip-batch.txt");
        string fdbBatch = Path.Combine(work, "bridge-batch.txt");
        if (!File.Exists(batch))
        {
            (string ip, string bridge) = Peers.IpBatch(peers, "flannel.1");
            await File.WriteAllTextAsync(batch, ip);
            await File.WriteAllTextAsync(fdbBatch, bridge);
        }

        await Measure.RunAsync("ip", "netns", "add", ns);
        try
        {
            await Measure.RunAsync("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer");
            await Measure.RunAsync("ip", "-n", ns, "link", "set", "eth0-peer", "up");
            await Measure.RunAsync("ip", "-n", ns, "addr", "add", "198.18.0.1/24", "dev", "eth0");
            await Measure.RunAsync("ip", "-n", ns, "link", "set", "eth0", "up");
            await Measure.RunAsync("ip", "-n", ns, "link", "add", "flannel.1", "type", "vxlan", "id", "1", "local", "198.18.0.1", "dev", "eth0", "dstport", "8472", "nolearning");
            await Measure.RunAsync("ip", "-n", ns, "addr", "add", "10.0.0.0/32", "dev", "flannel.1");
            await Measure.RunAsync("ip", "-n", ns, "link", "set", "flannel.1", "up");
            var clock = new Stopwatch();
            await using RouteMonitor? monitor = observed ? RouteMonitor.Start(clock, "flannel.1", ns) : null;
            clock.Start();
            await Measure.RunAsync("bridge", "-n", ns, "-batch", fdbBatch);
            await Measure.RunAsync("ip", "-n", ns, "-batch", batch);
            double elapsed = monitor is null ? clock.Elapsed.TotalMilliseconds : (await monitor.WaitForAsync(peers, TimeSpan.FromSeconds(60), () => "ip -batch")).TotalMilliseconds;
            string routes = await Measure.RunAsync("ip", "-n", ns, "-4", "route", "show", "dev", "flannel.1");
            int count = routes.Split('\n').Count(l => l.Contains(" via ", StringComparison.Ordinal));
            if (count != peers)
            {
                throw new InvalidOperationException($"ip -batch programmed {count} routes, not {peers}");
            }

            return (elapsed, monitor?.FirstAt?.TotalMilliseconds ?? double.NaN);
        }
        finally
        {
            await Measure.RunAsync("ip", "netns", "del", ns);
        }
    }

    private static string Join(List<double> values) => string.Join(", ", values.Select(v => v.ToString("0", CultureInfo.InvariantCulture)));

    private static async Task WaitForEtcdAsync(HttpClient http)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if ((await http.GetAsync("/health")).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException) when (clock.Elapsed < TimeSpan.FromSeconds(30))
            {
            }

            await Task.Delay(100);
        }
    }

    /// <summary>The network config and N leases (flannel's key layout and JSON), attached to one 24 h etcd lease, through etcd's JSON gateway.</summary>
    private static async Task SeedAsync(HttpClient http, int peers)
    {
        static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

        JsonNode grant = (await (await http.PostAsJsonAsync("/v3/lease/grant", new JsonObject { ["TTL"] = 86400 })).Content.ReadFromJsonAsync<JsonNode>())!;
        string lease = grant["ID"]!.GetValue<string>();
        (await http.PostAsJsonAsync("/v3/kv/put", new JsonObject
        {
            ["key"] = B64($"{Prefix}/config"),
            ["value"] = B64("""{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}}"""),
        })).EnsureSuccessStatusCode();
        for (int start = 0; start < peers; start += 100)
        {
            JsonArray puts = [];
            for (int i = start; i < Math.Min(peers, start + 100); i++)
            {
                (string subnet, _, string publicIP, string mac) = Peers.Of(i);
                string value = $"{{\"PublicIP\":\"{publicIP}\",\"PublicIPv6\":null,\"BackendType\":\"vxlan\",\"BackendData\":{Peers.BackendData(mac)}}}";
                puts.Add(new JsonObject { ["requestPut"] = new JsonObject { ["key"] = B64($"{Prefix}/subnets/{subnet.Replace('/', '-')}"), ["value"] = B64(value), ["lease"] = lease } });
            }

            (await http.PostAsJsonAsync("/v3/kv/txn", new JsonObject { ["success"] = puts })).EnsureSuccessStatusCode();
        }
    }

    /// <summary>All gRPC requests etcd has answered so far (its Prometheus counter).</summary>
    private static async Task<double> EtcdRpcsAsync(HttpClient http)
    {
        string metrics = await http.GetStringAsync("/metrics");
        return metrics.Split('\n')
            .Where(l => l.StartsWith("grpc_server_handled_total{", StringComparison.Ordinal))
            .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
    }
}
