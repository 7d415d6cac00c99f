using System.Globalization;
using Flannel.Scale;

// Scale figures of whole flanneld processes (root; run through benchmarks/scale.sh, which puts this program in a
// network namespace of its own with eth0 198.18.0.1/24 (a veth) and deletes it afterwards):
//
//   scale.sh etcd --flanneld native=DIR/flanneld [--flanneld jit=DIR2/flanneld] [--peers 5000] [--rounds 3]
//   scale.sh kube --flanneld native=DIR/flanneld [--nodes 5000] [--updates 2000]
//
// etcd: N peer leases in a local etcd; per round a cold start (no flannel.1, nothing programmed) of flanneld until
// subnet.env is written and until the N-th route is in the kernel (from the kernel's own route notifications), its
// RSS when steady and its etcd requests; then `ip -batch` programming the same neighbours, FDB entries and onlink
// routes into a fresh namespace, timed alike (to the N-th route's notification, the same RouteMonitor listening)
// and once more with nothing listening, and the ratios.
// kube: N nodes of about 5 KB in the Kubernetes API double; time to converged, RSS steady, the RSS peak while it
// re-lists all nodes after an expired watch, and the CPU time flanneld spends per node update that changes nothing
// flannel reads (a kubelet heartbeat), net of its idle CPU over as long a time.
// --arg FLAG (repeatable) adds a flag to every flanneld, e.g. --arg --healthz-port=8081; --env KEY=VALUE (repeatable)
// sets a variable for flanneld only, e.g. --env DOTNET_GCgen0size=400000 (bare hex: a native flanneld ignores a 0x
// prefix). --gcdump DIR writes a heap dump of a JIT flanneld (dotnet-gcdump, which forces a full GC) after each
// steady-state measurement, to see what the peers cost.
// --late SECONDS reads the RSS again that long after the steady figure: by then the periodic resyncs' kernel
// dumps have refilled the GC's gen0 budget, which a reading 5 s after convergence may not show; it also prints the
// CPU flanneld used in between, per second (the steady cost of its resyncs, probes and renewals).
if (args.Length == 0 || args[0] is not ("etcd" or "kube"))
{
    Console.Error.WriteLine("usage: Flannel.Scale etcd|kube --flanneld LABEL=PATH [--flanneld ...] [--peers N|--nodes N] [--rounds R] [--updates U] [--arg FLAG] [--env KEY=VALUE] [--gcdump DIR] [--late SECONDS]");
    return 2;
}

List<Flanneld> binaries = [];
List<string> extraArgs = [];
Dictionary<string, string> extraEnv = [];
int peers = 5000, rounds = 3, updates = 2000;
for (int i = 1; i < args.Length - 1; i += 2)
{
    switch (args[i])
    {
        case "--flanneld": binaries.Add(Flanneld.Parse(args[i + 1])); break;
        case "--peers" or "--nodes": peers = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--rounds": rounds = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--updates": updates = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--arg": extraArgs.Add(args[i + 1]); break;
        case "--late": Measure.LateReading = TimeSpan.FromSeconds(int.Parse(args[i + 1], CultureInfo.InvariantCulture)); break;
        case "--gcdump": Measure.GcDumpDirectory = Directory.CreateDirectory(args[i + 1]).FullName; break;
        case "--env" when args[i + 1].IndexOf('=', StringComparison.Ordinal) > 0:
            extraEnv[args[i + 1][..args[i + 1].IndexOf('=', StringComparison.Ordinal)]] = args[i + 1][(args[i + 1].IndexOf('=', StringComparison.Ordinal) + 1)..];
            break;
        default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
    }
}

if (binaries.Count == 0 || Environment.UserName != "root")
{
    Console.Error.WriteLine("needs root and at least one --flanneld");
    return 2;
}

foreach (Flanneld flanneld in binaries)
{
    flanneld.ExtraArgs.AddRange(extraArgs);
    foreach ((string key, string value) in extraEnv)
    {
        flanneld.Environment[key] = value;
    }
}

string work = Directory.CreateTempSubdirectory("flannel-scale-").FullName;
Console.WriteLine($"load average {File.ReadAllText("/proc/loadavg").Trim()}; {Environment.ProcessorCount} CPUs; work {work}");
try
{
    if (args[0] == "etcd")
    {
        await EtcdScale.RunAsync(binaries, peers, rounds, work);
    }
    else
    {
        foreach (Flanneld flanneld in binaries)
        {
            await KubeScale.RunAsync(flanneld, peers, updates, work);
        }
    }
}
finally
{
    Console.WriteLine($"logs in {work}");
}

return 0;
