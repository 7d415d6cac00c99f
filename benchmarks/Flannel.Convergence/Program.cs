using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Threading.Channels;
using Flannel.Backends;
using Flannel.Backends.Vxlan;
using Flannel.Configuration;
using Flannel.Netlink;
using Flannel.Subnets;
using Microsoft.Extensions.Options;

// Convergence of the vxlan backend in a real kernel (root; creates and deletes its own namespace):
//   dotnet run -c Release --project benchmarks/Flannel.Convergence -- [--peers 1000,5000] [--modes classic,nexthop] [--events 500]
// For each (peers, mode): a fresh namespace with an "eth0" bridge as the underlay; the backend registers
// (device creation), then RunAsync starts with a snapshot of N remote leases already queued. "Converged" is
// when the startup reconciliation has been acknowledged by the kernel for every object (3 per peer, 4 in
// nexthop mode); the route count is then checked with a dump. Afterwards single lease events are sent one at
// a time and timed from the write to the RTM_NEWROUTE notification for that subnet (event -> route latency).
// Probe load (issue 14): `-- --probe-load 5000 [--probe-interval 60] [--probe-window 60]` measures the agent's peer
// probes against N peers that never answer (ProbeLoad.cs).

int[] peerCounts = [1000, 5000];
string[] modes = ["classic", "nexthop"];
int events = 500;
int repeat = 3;
int probeLoad = 0;
int probeInterval = 60;
int probeWindow = 60;
for (int i = 0; i < args.Length - 1; i += 2)
{
    switch (args[i])
    {
        case "--peers": peerCounts = args[i + 1].Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray(); break;
        case "--modes": modes = args[i + 1].Split(','); break;
        case "--events": events = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--repeat": repeat = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--probe-load": probeLoad = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--probe-interval": probeInterval = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--probe-window": probeWindow = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
    }
}

if (Environment.UserName != "root")
{
    Console.Error.WriteLine("needs root (network namespaces)");
    return 2;
}

if (probeLoad > 0)
{
    return await ProbeLoad.RunAsync(probeLoad, TimeSpan.FromSeconds(probeInterval), TimeSpan.FromSeconds(probeWindow));
}

// One small discarded run first, so that JIT compilation is not counted in the first figures.
await ConvergenceRun.RunAsync(200, VxlanRouteMode.NexthopObjects, 50);
await ConvergenceRun.RunAsync(200, VxlanRouteMode.Classic, 50);

Console.WriteLine($"load average: {File.ReadAllText("/proc/loadavg").Trim()}; {Environment.ProcessorCount} CPUs; each row is the run with the median convergence of {repeat}");
Console.WriteLine($"{"peers",6} {"mode",-8} {"register",10} {"converge",10} {"(min)",10} {"objects",8} {"evt p50",9} {"evt p99",9} {"evt max",9}   raw batch (median)");
foreach (int peers in peerCounts)
{
    foreach (string mode in modes)
    {
        VxlanRouteMode routeMode = mode == "nexthop" ? VxlanRouteMode.NexthopObjects : VxlanRouteMode.Classic;
        var runs = new List<Result>();
        var floors = new List<TimeSpan>();
        for (int k = 0; k < repeat; k++)
        {
            runs.Add(await ConvergenceRun.RunAsync(peers, routeMode, events));
            floors.Add(await ConvergenceRun.RawBatchAsync(peers, routeMode));
        }

        runs.Sort((x, y) => x.Converge.CompareTo(y.Converge));
        floors.Sort();
        Result r = runs[runs.Count / 2];
        TimeSpan floor = floors[floors.Count / 2];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{peers,6} {mode,-8} {r.Register.TotalMilliseconds,8:F1}ms {r.Converge.TotalMilliseconds,8:F1}ms {runs[0].Converge.TotalMilliseconds,8:F1}ms {r.Objects,8} {r.EventP50.TotalMilliseconds,7:F2}ms {r.EventP99.TotalMilliseconds,7:F2}ms {r.EventMax.TotalMilliseconds,7:F2}ms   {floor.TotalMilliseconds,7:F1}ms"));
    }
}

return 0;

internal sealed record Result(TimeSpan Register, TimeSpan Converge, int Objects, TimeSpan EventP50, TimeSpan EventP99, TimeSpan EventMax);

internal static class ConvergenceRun
{
    public static async Task<Result> RunAsync(int peers, VxlanRouteMode mode, int eventCount)
    {
        string ns = $"fnt-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}-conv";
        await Ip("netns", "add", ns);
        try
        {
            await Ip("-n", ns, "link", "set", "lo", "up");
            await Ip("-n", ns, "link", "add", "eth0", "type", "bridge");
            await Ip("-n", ns, "addr", "add", "198.18.0.1/15", "dev", "eth0");
            await Ip("-n", ns, "link", "set", "eth0", "up");
            return await MeasureAsync(ns, peers, mode, eventCount);
        }
        finally
        {
            await Ip("netns", "del", ns);
        }
    }

    private static async Task<Result> MeasureAsync(string ns, int peers, VxlanRouteMode mode, int eventCount)
    {
        await using RtNetlink netlink = RtNetlink.OpenInNamespace(ns);
        await using RtNetlink observer = RtNetlink.OpenInNamespace(ns);
        LinkInfo eth0 = (await netlink.GetLinkAsync("eth0", CancellationToken.None))!;
        using var meters = new ListenerFactory();
        var backend = new VxlanBackend(
            netlink,
            Options.Create(new VxlanBackendOptions { RouteMode = mode, ResyncInterval = TimeSpan.FromHours(1) }),
            TimeProvider.System,
            meterFactory: meters);
        var local = IPAddress.Parse("198.18.0.1");
        var config = new NetworkConfig { Network = IPNetwork.Parse("10.0.0.0/8"), SubnetLen = 24, Backend = """{"Type":"vxlan"}""" };

        var register = Stopwatch.StartNew();
        INetwork network = await backend.RegisterNetworkAsync(
            new BackendContext { Config = config, ExternalInterface = new ExternalInterface { Name = "eth0", Index = eth0.Index, Mtu = eth0.Mtu, IfaceAddress = local, PublicIP = local } },
            CancellationToken.None);
        await network.ConfigureLeaseAsync(new Lease { Subnet = Subnet(0), Attributes = network.LeaseAttributes }, CancellationToken.None);
        register.Stop();

        var feed = Channel.CreateUnbounded<IReadOnlyList<LeaseEvent>>();
        feed.Writer.TryWrite(Enumerable.Range(1, peers).Select(i => new LeaseEvent(LeaseEventType.Added, Peer(i))).ToArray());
        using var stop = new CancellationTokenSource();
        var converge = Stopwatch.StartNew();
        Task run = network.RunAsync(feed.Reader.ReadAllAsync(), stop.Token);
        await meters.StartupReconciled.Task.WaitAsync(TimeSpan.FromMinutes(5));
        converge.Stop();

        IReadOnlyList<RouteInfo> routes = await observer.ListRoutesAsync(new RouteFilter { Protocol = RouteDefaults.ProtocolFlannel }, CancellationToken.None);
        if (routes.Count != peers)
        {
            throw new InvalidOperationException($"expected {peers} routes after convergence, found {routes.Count}");
        }

        // Event -> route: one new lease at a time, timed until the kernel announces its route.
        var latencies = new List<TimeSpan>(eventCount);
        using var watchStop = new CancellationTokenSource();
        var announced = Channel.CreateUnbounded<(IPNetwork Destination, long At)>();
        var subscribed = new TaskCompletionSource();
        Task watch = Task.Run(async () =>
        {
            try
            {
                IAsyncEnumerable<NetlinkNotification> stream = observer.WatchAsync(NetlinkNotificationGroups.Route, watchStop.Token);
                await using IAsyncEnumerator<NetlinkNotification> e = stream.GetAsyncEnumerator(watchStop.Token);
                ValueTask<bool> first = e.MoveNextAsync();
                subscribed.TrySetResult();
                for (bool more = await first; more; more = await e.MoveNextAsync())
                {
                    if (e.Current is { Kind: NetlinkNotificationKind.RouteAdded, Route: { } route })
                    {
                        announced.Writer.TryWrite((route.Destination, Stopwatch.GetTimestamp()));
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
        await subscribed.Task;
        await Task.Delay(200); // let the multicast subscription settle

        for (int i = 0; i < eventCount; i++)
        {
            Lease lease = Peer(peers + 1 + i);
            long sent = Stopwatch.GetTimestamp();
            await feed.Writer.WriteAsync([new LeaseEvent(LeaseEventType.Added, lease)]);
            while (true)
            {
                (IPNetwork destination, long at) = await announced.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
                if (destination == lease.Subnet)
                {
                    latencies.Add(Stopwatch.GetElapsedTime(sent, at));
                    break;
                }
            }
        }

        await watchStop.CancelAsync();
        await watch;
        feed.Writer.TryComplete();
        await stop.CancelAsync();
        await run;

        latencies.Sort();
        int objectsPerPeer = mode == VxlanRouteMode.NexthopObjects ? 4 : 3;
        return new Result(
            register.Elapsed,
            converge.Elapsed,
            peers * objectsPerPeer,
            latencies.Count == 0 ? TimeSpan.Zero : latencies[latencies.Count / 2],
            latencies.Count == 0 ? TimeSpan.Zero : latencies[Math.Min(latencies.Count - 1, (int)Math.Ceiling(latencies.Count * 0.99) - 1)],
            latencies.Count == 0 ? TimeSpan.Zero : latencies[^1]);
    }

    /// <summary>
    /// The same objects sent as one INetlink batch with no backend in between: the kernel-plus-socket floor the
    /// convergence figure is compared with.
    /// </summary>
    public static async Task<TimeSpan> RawBatchAsync(int peers, VxlanRouteMode mode)
    {
        string ns = $"fnt-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}-raw";
        await Ip("netns", "add", ns);
        try
        {
            await Ip("-n", ns, "link", "add", "eth0", "type", "bridge");
            await Ip("-n", ns, "addr", "add", "198.18.0.1/15", "dev", "eth0");
            await Ip("-n", ns, "link", "set", "eth0", "up");
            await using RtNetlink netlink = RtNetlink.OpenInNamespace(ns);
            LinkInfo eth0 = (await netlink.GetLinkAsync("eth0", CancellationToken.None))!;
            LinkInfo dev = await netlink.CreateVxlanLinkAsync(new VxlanLinkSpec { Name = "flannel.1", Vni = 1, Local = IPAddress.Parse("198.18.0.1"), UnderlayIndex = eth0.Index }, CancellationToken.None);
            await netlink.SetLinkUpAsync(dev.Index, true, CancellationToken.None);
            var batch = new NetlinkBatch(peers * 4);
            for (int i = 1; i <= peers; i++)
            {
                Lease lease = Peer(i);
                var mac = MacAddress.Parse(lease.Attributes.BackendData!.Split('"')[5]);
                IPAddress gateway = lease.Subnet!.Value.BaseAddress;
                batch.ReplaceNeighbor(new NeighborSpec { LinkIndex = dev.Index, Address = gateway, LinkLayerAddress = mac });
                batch.ReplaceFdbEntry(new FdbEntrySpec { LinkIndex = dev.Index, MacAddress = mac, Destination = lease.Attributes.PublicIP });
                if (mode == VxlanRouteMode.NexthopObjects)
                {
                    batch.ReplaceNexthop(new NexthopSpec { Id = (uint)i, Gateway = gateway, LinkIndex = dev.Index, OnLink = true });
                    batch.ReplaceRoute(new RouteSpec { Destination = lease.Subnet.Value, NexthopId = (uint)i, Protocol = RouteDefaults.ProtocolFlannel });
                }
                else
                {
                    batch.ReplaceRoute(new RouteSpec { Destination = lease.Subnet.Value, Gateway = gateway, LinkIndex = dev.Index, OnLink = true, Protocol = RouteDefaults.ProtocolFlannel });
                }
            }

            var watch = Stopwatch.StartNew();
            NetlinkBatchResult result = await netlink.ApplyAsync(batch, CancellationToken.None);
            watch.Stop();
            return result.AllSucceeded ? watch.Elapsed : throw new InvalidOperationException($"{result.FailedCount} raw operations failed: {result.Errors.First(e => e is not null)!.Message}");
        }
        finally
        {
            await Ip("netns", "del", ns);
        }
    }

    private static IPNetwork Subnet(int i) => new(new IPAddress([10, (byte)(i >> 8), (byte)i, 0]), 24);

    private static Lease Peer(int i)
    {
        var mac = new MacAddress([0x0e, 0, 0, 0, (byte)(i >> 8), (byte)i]);
        return new Lease
        {
            Subnet = Subnet(i),
            Attributes = new LeaseAttributes
            {
                PublicIP = new IPAddress([198, (byte)(18 + ((i >> 16) & 1)), (byte)(i >> 8), (byte)i]),
                BackendType = "vxlan",
                BackendData = $"{{\"VNI\":1,\"VtepMAC\":\"{mac}\"}}",
            },
        };
    }

    private static async Task Ip(params string[] args)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardError = true };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(start)!;
        string error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"ip {string.Join(' ', args)}: {error}");
        }
    }
}

/// <summary>Meters for the backend, with a listener that completes when the startup reconciliation is reported.</summary>
internal sealed class ListenerFactory : IMeterFactory
{
    private readonly MeterListener _listener = new();
    private readonly List<Meter> _meters = [];

    public ListenerFactory()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, this) && instrument.Name == "flannel.backend.reconciliations")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == "reason" && (string?)tag.Value == "startup")
                {
                    StartupReconciled.TrySetResult();
                }
            }
        });
        _listener.Start();
    }

    public TaskCompletionSource StartupReconciled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Meter Create(MeterOptions options)
    {
        var meter = new Meter(options.Name, options.Version, options.Tags, scope: this);
        _meters.Add(meter);
        return meter;
    }

    public void Dispose()
    {
        _listener.Dispose();
        foreach (Meter meter in _meters)
        {
            meter.Dispose();
        }
    }
}
