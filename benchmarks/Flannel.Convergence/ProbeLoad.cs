using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using System.Threading.Channels;
using Flannel.Agent.Probing;
using Flannel.Backends;
using Flannel.Backends.Vxlan;
using Flannel.Configuration;
using Flannel.Netlink;
using Flannel.Subnets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

/// <summary>
/// The probe traffic of N simulated peers (`--probe-load 5000`): a namespace whose underlay "eth0" is a bridge without
/// ports and without ARP (198.19.255.1/24; the peers' 198.18.0.0/16 routed via one gateway, so one neighbour entry:
/// every packet to a peer is sent and silently discarded, so no peer ever answers), the vxlan
/// backend converged with N peers (their routes, neighbours and FDB entries in the kernel), then the agent's prober
/// probing all of them over the overlay (VXLAN-encapsulated ICMP) and the underlay (ICMP) for one interval.
/// Reported: the probe rate (requests counted by the prober's metrics, packets by the dummy device's tx counter),
/// the busiest second, requests in flight, and the process's CPU time and RSS idle vs probing.
/// </summary>
internal static class ProbeLoad
{
    public static async Task<int> RunAsync(int peers, TimeSpan interval, TimeSpan window)
    {
        string ns = $"fnt-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}-probe";
        await Ip("netns", "add", ns);
        try
        {
            await Ip("-n", ns, "link", "set", "lo", "up");
            await Ip("-n", ns, "link", "add", "eth0", "type", "bridge");
            await Ip("-n", ns, "link", "set", "eth0", "arp", "off");
            await Ip("-n", ns, "addr", "add", "198.19.255.1/24", "dev", "eth0");
            await Ip("-n", ns, "link", "set", "eth0", "up");
            await Ip("-n", ns, "route", "add", "198.18.0.0/16", "via", "198.19.255.254", "dev", "eth0");
            await MeasureAsync(ns, peers, interval, window);
            return 0;
        }
        finally
        {
            await Ip("netns", "del", ns);
        }
    }

    private static async Task MeasureAsync(string ns, int peerCount, TimeSpan interval, TimeSpan window)
    {
        await using RtNetlink netlink = RtNetlink.OpenInNamespace(ns);
        LinkInfo eth0 = (await netlink.GetLinkAsync("eth0", CancellationToken.None))!;
        var backend = new VxlanBackend(netlink, Options.Create(new VxlanBackendOptions { ResyncInterval = TimeSpan.FromHours(1) }), TimeProvider.System);
        var local = IPAddress.Parse("198.19.255.1");
        var config = new NetworkConfig { Network = IPNetwork.Parse("10.0.0.0/8"), SubnetLen = 24, Backend = """{"Type":"vxlan"}""" };
        INetwork network = await backend.RegisterNetworkAsync(
            new BackendContext { Config = config, ExternalInterface = new ExternalInterface { Name = "eth0", Index = eth0.Index, Mtu = eth0.Mtu, IfaceAddress = local, PublicIP = local } },
            CancellationToken.None);
        var own = new Lease { Subnet = Subnet(0), Attributes = network.LeaseAttributes };
        await network.ConfigureLeaseAsync(own, CancellationToken.None);
        Lease[] peers = [.. Enumerable.Range(1, peerCount).Select(Peer)];
        var feed = Channel.CreateUnbounded<IReadOnlyList<LeaseEvent>>();
        feed.Writer.TryWrite([.. peers.Select(p => new LeaseEvent(LeaseEventType.Added, p))]);
        using var stop = new CancellationTokenSource();
        Task run = network.RunAsync(feed.Reader.ReadAllAsync(), stop.Token);
        await WaitForRoutesAsync(netlink, peerCount);

        // Idle: the converged backend alone, for the same window.
        (TimeSpan idleCpu, long idleRss) = await SampleAsync(window, null);

        // Probing: one prober, real raw sockets in the namespace, every peer over both paths.
        var options = new FabricProbeOptions { Interval = interval, Timeout = TimeSpan.FromSeconds(1) };
        using var meters = new CountingMeterFactory();
        using var metrics = new FabricMetrics(meters);
        using var echo = new IcmpEchoProber(ns);
        using var prober = new FabricProber("probe-load", options, echo, TimeProvider.System, NullLogger.Instance, metrics);
        prober.SetEndpoints(new ProbeEndpoints(own.Subnet!.Value.BaseAddress, local, (lease, family) => family == AddressFamily.InterNetwork ? lease.Subnet?.BaseAddress : null));
        prober.SetPeers(peers);
        long packetsBefore = await TxPacketsAsync(ns);
        using var probing = new CancellationTokenSource();
        Task probe = prober.RunAsync(probing.Token);

        var perSecond = new List<long>();
        int maxInFlight = 0;
        long lastCount = 0;
        void EverySecond()
        {
            long count = meters.Probes;
            perSecond.Add(count - lastCount);
            lastCount = count;
            maxInFlight = Math.Max(maxInFlight, prober.InFlight);
        }

        // First interval: every peer is new and fails, so each also gets its confirmation probes (bounded by the
        // planner at the regular rate). Second interval: the steady state, every peer known to be unreachable.
        (TimeSpan firstCpu, long firstRss) = await SampleAsync(window, EverySecond);
        long firstRequests = meters.Probes;
        long firstPackets = await TxPacketsAsync(ns) - packetsBefore;
        long firstBusiest = perSecond.Count == 0 ? 0 : perSecond.Max();
        perSecond.Clear();
        (TimeSpan steadyCpu, long steadyRss) = await SampleAsync(window, EverySecond);
        long steadyRequests = meters.Probes - firstRequests;
        long steadyPackets = await TxPacketsAsync(ns) - packetsBefore - firstPackets;
        await probing.CancelAsync();
        await probe;

        feed.Writer.TryComplete();
        await stop.CancelAsync();
        await run;

        double seconds = window.TotalSeconds;
        Console.WriteLine($"load average: {File.ReadAllText("/proc/loadavg").Trim()}; {Environment.ProcessorCount} CPUs");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{peerCount} peers, interval {interval.TotalSeconds:0} s, timeout 1 s, windows of {seconds:0} s; nobody answers (a portless, ARP-less bridge underlay)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  planned rate               {prober.PeersPerSecond:0.0} peers/s = {2 * prober.PeersPerSecond:0.0} echo requests/s (overlay + underlay)"));
        Console.WriteLine($"  {"",-26} {"idle",12} {"first round",14} {"steady state",14}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {"echo requests/s",-26} {"-",12} {firstRequests / seconds,14:0.0} {steadyRequests / seconds,14:0.0}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {"packets/s on eth0",-26} {"-",12} {firstPackets / seconds,14:0.0} {steadyPackets / seconds,14:0.0}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {"busiest second (requests)",-26} {"-",12} {firstBusiest,14} {(perSecond.Count == 0 ? 0 : perSecond.Max()),14}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {"CPU, % of one core",-26} {100 * idleCpu.TotalSeconds / seconds,12:0.00} {100 * firstCpu.TotalSeconds / seconds,14:0.00} {100 * steadyCpu.TotalSeconds / seconds,14:0.00}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {"RSS, MiB",-26} {idleRss / 1048576.0,12:0.0} {firstRss / 1048576.0,14:0.0} {steadyRss / 1048576.0,14:0.0}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  peers in flight (max)      {maxInFlight}"));
    }

    /// <summary>Process CPU time over <paramref name="window"/>, and RSS at its end; <paramref name="everySecond"/> runs once a second.</summary>
    private static async Task<(TimeSpan Cpu, long Rss)> SampleAsync(TimeSpan window, Action? everySecond)
    {
        using var self = Process.GetCurrentProcess();
        TimeSpan before = self.TotalProcessorTime;
        TimeSpan userBefore = self.UserProcessorTime;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < window)
        {
            await Task.Delay(TimeSpan.FromSeconds(1));
            everySecond?.Invoke();
        }

        self.Refresh();
        TimeSpan total = self.TotalProcessorTime - before;
        TimeSpan user = self.UserProcessorTime - userBefore;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  (window: {total.TotalMilliseconds:0} ms CPU, {user.TotalMilliseconds:0} ms user, {(total - user).TotalMilliseconds:0} ms kernel)"));
        return (total, self.WorkingSet64);
    }

    private static async Task WaitForRoutesAsync(RtNetlink netlink, int peers)
    {
        for (int i = 0; i < 600; i++)
        {
            IReadOnlyList<RouteInfo> routes = await netlink.ListRoutesAsync(new RouteFilter { Protocol = RouteDefaults.ProtocolFlannel }, CancellationToken.None);
            if (routes.Count >= peers)
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new InvalidOperationException($"the backend did not program {peers} routes");
    }

    private static async Task<long> TxPacketsAsync(string ns)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true };
        foreach (string arg in new[] { "-n", ns, "-s", "-j", "link", "show", "eth0" })
        {
            start.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(start)!;
        string json = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        using JsonDocument document = JsonDocument.Parse(json);
        return document.RootElement[0].GetProperty("stats64").GetProperty("tx").GetProperty("packets").GetInt64();
    }

    private static IPNetwork Subnet(int i) => new(new IPAddress([10, (byte)(i >> 8), (byte)i, 0]), 24);

    private static Lease Peer(int i) => new()
    {
        Subnet = Subnet(i),
        Attributes = new LeaseAttributes
        {
            PublicIP = new IPAddress([198, (byte)(18 + ((i >> 16) & 1)), (byte)(i >> 8), (byte)i]),
            BackendType = "vxlan",
            BackendData = $"{{\"VNI\":1,\"VtepMAC\":\"0e:00:00:00:{(byte)(i >> 8):x2}:{(byte)i:x2}\"}}",
        },
    };

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

    /// <summary>Counts the prober's echo requests (flannel.peer.probes) as they are recorded.</summary>
    private sealed class CountingMeterFactory : IMeterFactory
    {
        private readonly MeterListener _listener = new();
        private readonly List<Meter> _meters = [];
        private long _probes;

        public CountingMeterFactory()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter.Scope, this) && instrument.Name == FabricMetrics.ProbesName)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref _probes, value));
            _listener.Start();
        }

        public long Probes => Interlocked.Read(ref _probes);

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
}
