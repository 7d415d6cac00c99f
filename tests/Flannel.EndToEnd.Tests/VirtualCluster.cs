using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Flannel.Testing;
using Flannel.Testing.Namespaces;

namespace Flannel.EndToEnd.Tests;

/// <summary>
/// A 3-node cluster in network namespaces, as the demo builds it: a bridge namespace (br0 198.18.0.254/24, which
/// also runs etcd) and node namespaces whose eth0 (198.18.0.11-13/24) is a veth into br0; one real <c>flanneld</c>
/// process per node (<c>ip netns exec NODE flanneld …</c>) against that etcd, and pods wired by the real
/// <c>flannel</c> CNI plugin delegating to /usr/lib/cni. Disposing stops every process by PID and deletes every
/// namespace and file.
/// </summary>
internal sealed class VirtualCluster : IAsyncDisposable
{
    public const string Prefix = "/coreos.com/network";

    private readonly string _work = Directory.CreateTempSubdirectory("flannel-e2e-").FullName;
    private readonly List<NetworkNamespace> _namespaces = [];
    private readonly Dictionary<string, Process> _flanneld = new(StringComparer.Ordinal);
    private readonly Dictionary<string, WireGuardMountNamespace> _wireGuardMounts = new(StringComparer.Ordinal);
    private Process? _etcd;

    private VirtualCluster(string backend, ClusterFamilies families, IReadOnlyList<string> flanneldArguments, ContainerImage? image, IReadOnlySet<string> containerNodes)
    {
        Backend = backend;
        Families = families;
        FlanneldArguments = flanneldArguments;
        _image = image;
        _containerNodes = containerNodes;
    }

    private readonly ContainerImage? _image;
    private readonly IReadOnlySet<string> _containerNodes;

    public string Backend { get; }

    /// <summary>Which address families the underlay and the pod networks use.</summary>
    public ClusterFamilies Families { get; }

    public bool HasIPv4 => Families != ClusterFamilies.IPv6Only;

    public bool HasIPv6 => Families != ClusterFamilies.IPv4;

    /// <summary>etcd on the bridge namespace: over IPv4, or over IPv6 in an IPv6-only cluster.</summary>
    public string EtcdUrl => HasIPv4 ? "http://198.18.0.254:2379" : "http://[fd00:198:18::fe]:2379";

    /// <summary>The network config written to etcd.</summary>
    public string NetworkConfigJson => Families switch
    {
        ClusterFamilies.DualStack => $$$"""{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"{{{Backend}}}"}}""",
        ClusterFamilies.IPv6Only => $$$"""{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"{{{Backend}}}"}}""",
        _ => $$$"""{"Network":"10.244.0.0/16","Backend":{"Type":"{{{Backend}}}"}}""",
    };

    /// <summary>Flags every flanneld gets beyond the defaults (etcd, subnet file, eth0, --ip-masq).</summary>
    public IReadOnlyList<string> FlanneldArguments { get; }

    public NetworkNamespace Bridge { get; private set; } = null!;

    public IReadOnlyDictionary<string, NetworkNamespace> Nodes => _nodes;

    public IReadOnlyDictionary<string, string> NodeAddresses => _addresses;

    /// <summary>The nodes' IPv6 underlay addresses (fd00:198:18::11-13) when the cluster has IPv6.</summary>
    public IReadOnlyDictionary<string, string> NodeIPv6Addresses => _addresses6;

    private readonly Dictionary<string, NetworkNamespace> _nodes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _addresses = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _addresses6 = new(StringComparer.Ordinal);

    /// <summary>
    /// The native-AOT binaries the tests run: <c>FLANNEL_NATIVE_DIR</c> (scripts/test.sh publishes flanneld and flannel
    /// there). Without it, outside CI, the JIT builds next to the test assembly are used for development.
    /// </summary>
    public static string? NativeDirectory => Environment.GetEnvironmentVariable("FLANNEL_NATIVE_DIR") is { Length: > 0 } dir ? dir : null;

    public static string FlanneldPath => NativeDirectory is { } dir ? Path.Combine(dir, "flanneld") : BuiltExecutable("samples/Flannel.Host", "flanneld");

    public static string CniPluginPath => NativeDirectory is { } dir ? Path.Combine(dir, "flannel") : BuiltExecutable("src/Flannel.Cni", "flannel");

    /// <summary>Checks the prerequisites (root, etcd, the CNI plugins, the built executables) or skips/fails.</summary>
    public static void RequirePrerequisites()
    {
        Privileged.RequireRoot();
        Privileged.RequireExecutable("etcd");
        Privileged.RequireExecutable("etcdctl");
        Privileged.RequireExecutable("iptables");
        Privileged.Require(File.Exists("/usr/lib/cni/bridge") && File.Exists("/usr/lib/cni/host-local"), "the CNI plugins are not in /usr/lib/cni");
        Privileged.Require(NativeDirectory is not null || !Privileged.IsCi, "FLANNEL_NATIVE_DIR must name the native-AOT flanneld and flannel (scripts/test.sh publishes them)");
        Privileged.Require(File.Exists(FlanneldPath), $"flanneld is not built at {FlanneldPath}");
        Privileged.Require(File.Exists(CniPluginPath), $"the flannel CNI plugin is not built at {CniPluginPath}");
    }

    public static Task<VirtualCluster> StartAsync(string backend = "vxlan", params string[] flanneldArguments) =>
        StartAsync(backend, ClusterFamilies.IPv4, flanneldArguments);

    public static Task<VirtualCluster> StartAsync(string backend, ClusterFamilies families, params string[] flanneldArguments) =>
        StartAsync(backend, families, image: null, containerNodes: new HashSet<string>(), flanneldArguments);

    /// <summary>Starts the cluster; the nodes in <paramref name="containerNodes"/> run flanneld from <paramref name="image"/> with podman.</summary>
    public static async Task<VirtualCluster> StartAsync(
        string backend, ClusterFamilies families, ContainerImage? image, IReadOnlySet<string> containerNodes, params string[] flanneldArguments)
    {
        var cluster = new VirtualCluster(backend, families, flanneldArguments, image, containerNodes);
        try
        {
            await cluster.CreateTopologyAsync();
            if (backend == "wireguard")
            {
                // Each node's wireguard-go needs its own /var/run/wireguard (every node has a flannel-wg).
                foreach (string node in cluster._nodes.Keys)
                {
                    cluster._wireGuardMounts[node] = await WireGuardMountNamespace.CreateAsync(Path.Combine(cluster._work, node, "wireguard"));
                }
            }

            await cluster.StartEtcdAsync();
            foreach (string node in cluster._nodes.Keys)
            {
                cluster.StartFlanneld(node);
            }

            await cluster.WaitForMeshAsync();
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    public string SubnetFile(string node) => Path.Combine(_work, node, "subnet.env");

    /// <summary>The node's status socket (each flanneld gets its own: they share one filesystem).</summary>
    public string StatusSocket(string node) => Path.Combine(_work, node, "flannel.sock");

    /// <summary>Runs <c>flanneld ARGS</c> in the node's namespace (<c>status</c>, <c>doctor</c>) and returns its exit code and stdout (stderr appended).</summary>
    public async Task<(int ExitCode, string Output)> FlanneldSubcommandAsync(string node, params string[] args)
    {
        ProcessResult result = await _nodes[node].RunAsync([FlanneldPath, .. args]);
        return (result.ExitCode, result.StandardOutput + result.StandardError);
    }

    /// <summary><c>flanneld doctor</c> on the node, reading the leases from its agent's socket.</summary>
    public Task<(int ExitCode, string Output)> DoctorAsync(string node) =>
        FlanneldSubcommandAsync(node, "doctor", "--socket", StatusSocket(node), $"--subnet-file={SubnetFile(node)}", $"--etcd-endpoints={EtcdUrl}");

    /// <summary>The node's lease subnet from its subnet.env, e.g. 10.244.7.0/24.</summary>
    public IPNetwork Subnet(string node) => SubnetFromEnv(node, "FLANNEL_SUBNET=");

    /// <summary>The node's IPv6 lease subnet from its subnet.env, e.g. fd00:10:244:7::/64.</summary>
    public IPNetwork Subnet6(string node) => SubnetFromEnv(node, "FLANNEL_IPV6_SUBNET=");

    /// <summary>The node's subnets of the cluster's families.</summary>
    public IEnumerable<IPNetwork> Subnets(string node)
    {
        if (HasIPv4)
        {
            yield return Subnet(node);
        }

        if (HasIPv6)
        {
            yield return Subnet6(node);
        }
    }

    private IPNetwork SubnetFromEnv(string node, string variable)
    {
        string line = File.ReadAllLines(SubnetFile(node)).Single(l => l.StartsWith(variable, StringComparison.Ordinal));
        var gateway = IPNetwork.Parse(line[variable.Length..]);
        return new IPNetwork(Flannel.Networking.IPNetworkMath.Mask(gateway.BaseAddress, gateway.PrefixLength), gateway.PrefixLength);
    }

    /// <summary>The port each flanneld serves /healthz, /readyz (and /metrics) on, at its node's address.</summary>
    public const int HealthzPort = 8081;

    /// <summary>The node's WireGuard private key file (<c>$WIREGUARD_KEY_FILE</c>).</summary>
    public string WireGuardKeyFile(string node) => Path.Combine(_work, node, "wgkey");

    /// <summary>Runs <c>wg ARGS</c> for the node (its network namespace and its /var/run/wireguard) and returns the output.</summary>
    public async Task<string> WgAsync(string node, params string[] args)
    {
        ProcessResult result = await NetworkNamespace.RunProcessAsync(_wireGuardMounts[node].Enter(_nodes[node], ["wg", .. args]), CancellationToken.None);
        Assert.True(result.ExitCode == 0, $"wg {string.Join(' ', args)} on {node} failed: {result.StandardError}");
        return result.StandardOutput;
    }

    /// <summary>The peers of a node's WireGuard device from <c>wg show DEVICE dump</c>: public key → (endpoint, allowed IPs).</summary>
    public async Task<Dictionary<string, (string Endpoint, string AllowedIps)>> WireGuardPeersAsync(string node, string device = "flannel-wg")
    {
        var peers = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        string[] lines = (await WgAsync(node, "show", device, "dump")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        foreach (string line in lines.Skip(1)) // the first line is the interface
        {
            string[] fields = line.Split('\t');
            peers[fields[0]] = (fields[2], fields[3]);
        }

        return peers;
    }

    public void StartFlanneld(string node)
    {
        bool inContainer = _containerNodes.Contains(node);
        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string[] flags =
        [
            $"--etcd-endpoints={EtcdUrl}", $"--subnet-file={SubnetFile(node)}", "--iface=eth0", "--ip-masq",
            $"--status-socket={StatusSocket(node)}",
            $"--healthz-ip={(HasIPv4 ? _addresses[node] : _addresses6[node])}", $"--healthz-port={HealthzPort}",
            .. FlanneldArguments,
        ];

        // The node's directory (subnet.env, the status socket) is bind-mounted at the same path into a container.
        string nodeDirectory = Path.Combine(_work, node);
        string[] arguments = inContainer
            ? ["podman", .. _image!.RunArguments(ContainerName(node), _nodes[node].Path, [(nodeDirectory, nodeDirectory)]), _image.Name, .. flags]
            : ["ip", "netns", "exec", _nodes[node].Name, FlanneldPath, .. flags];
        if (_wireGuardMounts.TryGetValue(node, out WireGuardMountNamespace? mount))
        {
            if (inContainer)
            {
                throw new NotSupportedException("the container nodes run vxlan: podman would need the node's private /var/run/wireguard mounted");
            }

            // flanneld, and the wireguard-go it starts, see the node's private /var/run/wireguard.
            arguments = mount.Enter(arguments);
            start.Environment["WIREGUARD_KEY_FILE"] = WireGuardKeyFile(node);
        }

        start.FileName = arguments[0];
        foreach (string arg in arguments.Skip(1))
        {
            start.ArgumentList.Add(arg);
        }

        string log = Path.Combine(_work, $"flanneld-{node}.log");
        var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start flanneld");
        process.OutputDataReceived += (_, e) => Append(log, e.Data);
        process.ErrorDataReceived += (_, e) => Append(log, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _flanneld[node] = process;
    }

    /// <summary>Stops a node's flanneld with SIGTERM (as systemd or the kubelet would) and waits for it to exit.</summary>
    public async Task StopFlanneldAsync(string node)
    {
        Process process = _flanneld[node];
        _flanneld.Remove(node);
        await StopAsync(process);
    }

    /// <summary>The process ID of a node's running flanneld.</summary>
    public int FlanneldPid(string node) => _flanneld[node].Id;

    /// <summary>
    /// The CPU time (user + system) a process has used so far, from <c>/proc/PID/stat</c> (fields 14 and 15, in clock
    /// ticks of 1/100 s on Linux).
    /// </summary>
    public static TimeSpan CpuTime(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");

        // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        long ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return TimeSpan.FromSeconds(ticks / 100.0);
    }

    public string FlanneldLog(string node)
    {
        string path = Path.Combine(_work, $"flanneld-{node}.log");
        return File.Exists(path) ? File.ReadAllText(path) : string.Empty;
    }

    public Task<string> EtcdctlAsync(params string[] args) =>
        Bridge.RunCheckedAsync(["env", "ETCDCTL_API=3", "etcdctl", "--endpoints", EtcdUrl, .. args]);

    /// <summary>
    /// Creates a pod namespace on <paramref name="node"/> through the flannel CNI plugin and returns its address (the
    /// IPv4 one, or the IPv6 one in an IPv6-only cluster; <see cref="PodIPv6Async"/> gives the IPv6 one).
    /// </summary>
    public async Task<(NetworkNamespace Pod, IPAddress Address)> AddPodAsync(string node, string containerId)
    {
        NetworkNamespace pod = await NetworkNamespace.CreateAsync("fe2e-pod");
        _namespaces.Add(pod);
        string conf = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["cniVersion"] = "0.3.1",
            ["name"] = "cbr0",
            ["type"] = "flannel",
            ["subnetFile"] = SubnetFile(node),
            ["dataDir"] = Path.Combine(_work, node, "cni-data"),
            ["delegate"] = new Dictionary<string, object> { ["hairpinMode"] = true, ["isDefaultGateway"] = true },
            ["ipam"] = new Dictionary<string, object> { ["dataDir"] = Path.Combine(_work, node, "ipam") },
        });
        var start = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[]
        {
            "netns", "exec", _nodes[node].Name, "env", "CNI_COMMAND=ADD", $"CNI_CONTAINERID={containerId}",
            $"CNI_NETNS={pod.Path}", "CNI_IFNAME=eth0", $"CNI_PATH={Path.GetDirectoryName(CniPluginPath)}:/usr/lib/cni", CniPluginPath,
        })
        {
            start.ArgumentList.Add(arg);
        }

        using Process cni = Process.Start(start) ?? throw new InvalidOperationException("cannot start the CNI plugin");
        Task<string> stdout = cni.StandardOutput.ReadToEndAsync();
        Task<string> stderr = cni.StandardError.ReadToEndAsync();
        await cni.StandardInput.WriteAsync(conf);
        cni.StandardInput.Close();
        await cni.WaitForExitAsync();
        Assert.True(cni.ExitCode == 0, $"CNI ADD on {node} failed: {await stdout} {await stderr}");
        if (!HasIPv4)
        {
            return (pod, await PodIPv6Async(pod));
        }

        JsonElement addresses = await pod.IpJsonAsync("ip", "-4", "addr", "show", "dev", "eth0");
        string local = addresses[0].GetProperty("addr_info")[0].GetProperty("local").GetString()!;
        return (pod, IPAddress.Parse(local));
    }

    /// <summary>The pod's global IPv6 address once duplicate address detection has finished with it.</summary>
    public static async Task<IPAddress> PodIPv6Async(NetworkNamespace pod)
    {
        IPAddress? found = null;
        await WaitUntilAsync(
            async () =>
            {
                JsonElement addresses = await pod.IpJsonAsync("ip", "-6", "addr", "show", "dev", "eth0", "scope", "global", "-tentative");
                if (addresses.GetArrayLength() > 0 && addresses[0].GetProperty("addr_info").GetArrayLength() > 0)
                {
                    found = IPAddress.Parse(addresses[0].GetProperty("addr_info")[0].GetProperty("local").GetString()!);
                }

                return found is not null;
            },
            $"a usable IPv6 address in pod {pod.Name}");
        return found!;
    }

    public static async Task<bool> PingAsync(NetworkNamespace from, IPAddress to)
    {
        ProcessResult ping = await from.RunAsync("ping", "-c", "2", "-W", "2", to.ToString());
        return ping.ExitCode == 0;
    }

    /// <summary>True when <paramref name="node"/> has a main-table route to <paramref name="subnet"/>.</summary>
    public async Task<bool> HasRouteAsync(string node, IPNetwork subnet)
    {
        // `ip route show PREFIX` lists IPv4 routes unless told -6.
        string family = subnet.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "-6" : "-4";
        JsonElement routes = await _nodes[node].IpJsonAsync("ip", family, "route", "show", subnet.ToString());
        return routes.GetArrayLength() > 0;
    }

    // Whole processes converge over seconds: poll every 100 ms for up to a minute.
    public static Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null) =>
        Wait.UntilAsync(condition, what, new WaitOptions { Timeout = timeout ?? TimeSpan.FromSeconds(60), PollInterval = TimeSpan.FromMilliseconds(100) });

    public async Task WaitForMeshAsync()
    {
        foreach (string node in _nodes.Keys)
        {
            await WaitUntilAsync(() => Task.FromResult(File.Exists(SubnetFile(node)) && new FileInfo(SubnetFile(node)).Length > 0), $"{node}'s subnet.env\n{FlanneldLog(node)}");
        }

        // subnet.env comes before the rules; ready means both are in.
        foreach (string node in _nodes.Keys)
        {
            await WaitUntilAsync(() => IsReadyAsync(node), $"{node} ready on its status socket\n{FlanneldLog(node)}");
        }

        foreach (string node in _nodes.Keys)
        {
            foreach (string peer in _nodes.Keys.Where(p => p != node))
            {
                foreach (IPNetwork subnet in Subnets(peer))
                {
                    if (Backend == "wireguard")
                    {
                        // One route to the whole network through flannel-wg; the per-node state is the peer.
                        string device = subnet.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "flannel-wg-v6" : "flannel-wg";
                        await WaitUntilAsync(
                            async () => (await WireGuardPeersAsync(node, device)).Values.Any(p => p.AllowedIps == subnet.ToString()),
                            $"{node}'s WireGuard peer for {peer} ({subnet})\n{FlanneldLog(node)}");
                    }
                    else
                    {
                        await WaitUntilAsync(() => HasRouteAsync(node, subnet), $"{node}'s route to {peer} ({subnet})\n{FlanneldLog(node)}");
                    }
                }
            }
        }
    }

    /// <summary>Whether the node's agent says it is ready (subnet.env written, rules installed) on its status socket.</summary>
    private async Task<bool> IsReadyAsync(string node)
    {
        try
        {
            using var client = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
            await client.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(StatusSocket(node)));
            await client.SendAsync("status\n"u8.ToArray());
            using var answer = new MemoryStream();
            await using (var stream = new System.Net.Sockets.NetworkStream(client, ownsSocket: false))
            {
                await stream.CopyToAsync(answer);
            }

            using JsonDocument status = JsonDocument.Parse(answer.ToArray());
            return status.RootElement.TryGetProperty("node", out JsonElement self) && self.TryGetProperty("ready", out JsonElement ready) && ready.GetBoolean();
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException)
        {
            return false; // not listening yet, or the agent went away while answering
        }
    }

    /// <summary>The podman container of a node that runs flanneld from the image.</summary>
    public string ContainerName(string node) => $"{Path.GetFileName(_work)}-{node}";

    public async ValueTask DisposeAsync()
    {
        foreach (Process process in _flanneld.Values)
        {
            await StopAsync(process);
        }

        _flanneld.Clear();
        foreach (string node in _containerNodes)
        {
            await ContainerImage.RemoveContainerAsync(ContainerName(node));
        }

        if (_etcd is not null)
        {
            await StopAsync(_etcd);
        }

        foreach (NetworkNamespace ns in Enumerable.Reverse(_namespaces))
        {
            await ns.DisposeAsync(); // also stops the wireguard-go daemons living in it
        }

        foreach (WireGuardMountNamespace mount in _wireGuardMounts.Values)
        {
            await mount.DisposeAsync();
        }

        Directory.Delete(_work, recursive: true);
    }

    private async Task CreateTopologyAsync()
    {
        Bridge = await NetworkNamespace.CreateAsync("fe2e-br");
        _namespaces.Add(Bridge);
        await Bridge.RunCheckedAsync("ip", "link", "add", "br0", "type", "bridge");
        if (HasIPv4)
        {
            await Bridge.RunCheckedAsync("ip", "addr", "add", "198.18.0.254/24", "dev", "br0");
        }

        if (HasIPv6)
        {
            await Bridge.RunCheckedAsync("ip", "addr", "add", "fd00:198:18::fe/64", "dev", "br0", "nodad");
        }

        await Bridge.RunCheckedAsync("ip", "link", "set", "br0", "up");
        for (int i = 1; i <= 3; i++)
        {
            string node = $"node{i}";
            string address = $"198.18.0.{10 + i}";
            string address6 = $"fd00:198:18::{10 + i}";
            NetworkNamespace ns = await NetworkNamespace.CreateAsync("fe2e-n");
            _namespaces.Add(ns);
            await Bridge.RunCheckedAsync("ip", "link", "add", $"v-{node}", "type", "veth", "peer", "name", "eth0", "netns", ns.Name);
            await Bridge.RunCheckedAsync("ip", "link", "set", $"v-{node}", "master", "br0", "up");
            if (HasIPv4)
            {
                await ns.RunCheckedAsync("ip", "addr", "add", $"{address}/24", "dev", "eth0");
            }

            if (HasIPv6)
            {
                // nodad: usable at once, as flanneld picks the node's IPv6 endpoint at startup.
                await ns.RunCheckedAsync("ip", "addr", "add", $"{address6}/64", "dev", "eth0", "nodad");
                await ns.RunCheckedAsync("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1");
                _addresses6[node] = address6;
            }

            await ns.RunCheckedAsync("ip", "link", "set", "eth0", "up");
            if (HasIPv4)
            {
                await ns.RunCheckedAsync("ip", "route", "add", "default", "via", "198.18.0.254");
            }

            if (HasIPv6)
            {
                await ns.RunCheckedAsync("ip", "-6", "route", "add", "default", "via", "fd00:198:18::fe");
            }

            await ns.RunCheckedAsync("sysctl", "-qw", "net.ipv4.ip_forward=1");
            Directory.CreateDirectory(Path.Combine(_work, node));
            _nodes[node] = ns;
            _addresses[node] = address;
        }
    }

    private async Task StartEtcdAsync()
    {
        var start = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        string name = Bridge.Name;
        foreach (string arg in new[]
        {
            "netns", "exec", Bridge.Name, "etcd", "--name", name, "--data-dir", Path.Combine(_work, "etcd"),
            "--listen-client-urls", EtcdUrl, "--advertise-client-urls", EtcdUrl,
            "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
            "--initial-cluster", $"{name}=http://127.0.0.1:2380", "--log-level", "warn", "--logger", "zap",
        })
        {
            start.ArgumentList.Add(arg);
        }

        _etcd = Process.Start(start) ?? throw new InvalidOperationException("cannot start etcd");
        string log = Path.Combine(_work, "etcd.log");
        _etcd.OutputDataReceived += (_, e) => Append(log, e.Data);
        _etcd.ErrorDataReceived += (_, e) => Append(log, e.Data);
        _etcd.BeginOutputReadLine();
        _etcd.BeginErrorReadLine();
        await WaitUntilAsync(
            async () => (await Bridge.RunAsync("env", "ETCDCTL_API=3", "etcdctl", "--endpoints", EtcdUrl, "endpoint", "health")).ExitCode == 0,
            "etcd to become healthy");
        await EtcdctlAsync("put", $"{Prefix}/config", NetworkConfigJson);
    }

    private static async Task StopAsync(Process process)
    {
        if (!process.HasExited)
        {
            // ip netns exec execs the program, so the PID is flanneld's (or etcd's) own; podman passes the signal on.
            _ = Tmds.Linux.LibC.kill(process.Id, Tmds.Linux.LibC.SIGTERM);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill();
                await process.WaitForExitAsync();
            }
        }

        process.Dispose();
    }

    private static void Append(string path, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (typeof(VirtualCluster))
        {
            File.AppendAllText(path, line + Environment.NewLine);
        }
    }

    private static string BuiltExecutable(string project, string name)
    {
        // tests/Flannel.EndToEnd.Tests/bin/<Configuration>/net10.0/ → the repository root, and the same configuration.
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        string configuration = output.Parent!.Name;
        string root = output.Parent!.Parent!.Parent!.Parent!.Parent!.FullName;
        return Path.Combine(root, project, "bin", configuration, "net10.0", name);
    }
}

/// <summary>The address families of a <see cref="VirtualCluster"/>.</summary>
internal enum ClusterFamilies
{
    /// <summary>IPv4 underlay and pods (flannel's default).</summary>
    IPv4,

    /// <summary>IPv4 and IPv6 underlay and pods (<c>EnableIPv6</c>, <c>IPv6Network</c>).</summary>
    DualStack,

    /// <summary>IPv6 only (<c>EnableIPv4: false</c>): IPv6 underlay, etcd over IPv6, IPv6 pods.</summary>
    IPv6Only,
}
