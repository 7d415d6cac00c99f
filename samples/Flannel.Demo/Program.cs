// flannel-demo: N flannel agents in ONE process, each bound to its own network namespace (its "node"), all sharing
// one in-memory subnet registry (the "cluster"). This is what `scripts/demo.sh` runs by default; it is also the
// smallest complete example of running several agents in one process: each agent gets its own service collection
// (its netlink namespace, store, backends, rules and options, registered with the same AddFlannel() calls as a single
// agent) and they share one FlannelHealth. The libraries never build a service provider; this program does (NodeAgents).
//
//   flannel-demo --network-config '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}' \
//                --node node1=NETNS1,/run/demo/node1/subnet.env --node node2=NETNS2,... [--iface eth0] [--ip-masq]
//                [--probe-interval SECONDS]
// Each agent probes its peers from its own namespace and serves its status on flannel.sock next to its subnet.env
// (`ip netns exec NETNS1 flanneld status --socket /run/demo/node1/flannel.sock`).
//
// For the wireguard backend a node takes a third value, its WireGuard directory: --node node1=NETNS1,SUBNETFILE,WGDIR
// with WGDIR/wgkey (the node's private key, created 0400), WGDIR/mnt (a pinned mount namespace in which
// /var/run/wireguard is bound to WGDIR/sockets, so each node's wireguard-go has its own socket directory; demo.sh
// creates it) and WGDIR/sockets (where this process reaches that node's wireguard-go sockets).
using Flannel.Agent.Health;
using Flannel.Agent.Metrics;
using Flannel.Demo;
using Flannel.Netlink;
using Flannel.Subnets.InMemory;
using Flannel.Agent.Traffic;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

string? networkConfig = null;
string iface = "eth0";
bool ipMasq = false;
double probeSeconds = 5;
var nodes = new List<(string Name, string Namespace, string SubnetFile, string? WireGuardDir)>();
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--network-config":
            networkConfig = Next();
            break;
        case "--iface":
            iface = Next();
            break;
        case "--ip-masq":
            ipMasq = true;
            break;
        case "--probe-interval":
            string seconds = Next();
            if (!double.TryParse(seconds, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out probeSeconds) || probeSeconds < 0)
            {
                await Console.Error.WriteLineAsync($"flannel-demo: --probe-interval {seconds}: expected a number of seconds (0 disables the probes)").ConfigureAwait(false);
                return 2;
            }

            break;
        case "--node":
            string spec = Next();
            string[] parts = spec.Split('=', 2);
            string[] values = parts.Length == 2 ? parts[1].Split(',', 3) : [];
            if (values.Length is not (2 or 3))
            {
                await Console.Error.WriteLineAsync($"flannel-demo: --node {spec}: expected NAME=NETNS,SUBNETFILE[,WGDIR]").ConfigureAwait(false);
                return 2;
            }

            nodes.Add((parts[0], values[0], values[1], values.Length == 3 ? values[2] : null));
            break;
        default:
            await Console.Error.WriteLineAsync($"flannel-demo: unknown argument {args[i]}").ConfigureAwait(false);
            return 2;
    }
}

if (networkConfig is null || nodes.Count == 0)
{
    await Console.Error.WriteLineAsync("usage: flannel-demo --network-config JSON --node NAME=NETNS,SUBNETFILE[,WGDIR] [--node ...] [--iface eth0] [--ip-masq]").ConfigureAwait(false);
    return 2;
}

HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { ApplicationName = "flannel-demo" });
builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; o.UseUtcTimestamp = true; });
builder.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
builder.Logging.SetMinimumLevel(LogLevel.Information);
builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(3));

// The cluster: one registry shared by every agent's in-memory store.
using var registry = new InMemorySubnetRegistry(networkConfig);
var health = new FlannelHealth();
builder.Services.AddSingleton(health);
builder.Services.AddSingleton(sp => new FlannelMetrics(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
foreach ((string name, string netns, string subnetFile, string? wireGuardDir) in nodes)
{
    builder.Services.AddNodeAgent(name, flannel =>
    {
        flannel.UseNetlink(_ => RtNetlink.OpenInNamespace(netns));
        flannel.UseSysctl(_ => ProcSysctl.InNamespace(netns));
        flannel.AddInMemorySubnetStore(registry);
        flannel.AddVxlanBackend();
        flannel.AddHostGwBackend();
        flannel.AddAllocBackend();
        flannel.AddExtensionBackend(o => o.NetworkNamespace = netns); // the commands program this node, not the process's namespace
        flannel.AddWireGuardBackend(o =>
        {
            o.NetworkNamespace = netns;
            if (wireGuardDir is not null)
            {
                o.KeyFile = Path.Combine(wireGuardDir, "wgkey");
                o.MountNamespace = Path.Combine(wireGuardDir, "mnt");
                o.SocketDirectory = Path.Combine(wireGuardDir, "sockets");
            }
        });
        flannel.UseTrafficManager(_ => new NetworkNamespaceCommandRunner(netns));
        flannel.UseFabricProbes(netns); // the probes leave from the node's namespace
        flannel.AddAgent(o =>
        {
            o.SubnetFile = subnetFile;
            o.IpMasq = ipMasq;
            o.Iface.Add(iface);
            o.StatusSocket = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(subnetFile))!, "flannel.sock");
            o.Probes.Enabled = probeSeconds > 0;
            if (probeSeconds > 0)
            {
                o.Probes.Interval = TimeSpan.FromSeconds(probeSeconds);
            }
        });
    });
}

using IHost host = builder.Build();
await host.RunAsync().ConfigureAwait(false);
return health.Failures.Count > 0 ? 1 : 0;
