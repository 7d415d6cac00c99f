using System.Net;
using System.Threading.Channels;
using Flannel.Backends;
using Flannel.Backends.Vxlan;
using Flannel.Configuration;
using Flannel.Netlink;
using Flannel.Subnets;
using Flannel.Testing.FakeNetlink;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Flannel.Testing;

namespace Flannel.Backends.Vxlan.Tests;

/// <summary>One node: a FakeNetlink namespace with eth0 198.18.0.1/24, a vxlan backend, and a lease-event feed.</summary>
internal sealed class VxlanHarness : IAsyncDisposable
{
    public static readonly IPNetwork ClusterNetwork = IPNetwork.Parse("10.244.0.0/16");
    public static readonly IPNetwork OwnSubnet = IPNetwork.Parse("10.244.1.0/24");

    private readonly Channel<IReadOnlyList<LeaseEvent>> _events = Channel.CreateUnbounded<IReadOnlyList<LeaseEvent>>();
    private readonly CancellationTokenSource _stop = new();
    private Task? _run;

    private VxlanHarness(FakeNetlink netlink, LinkInfo underlay)
    {
        Netlink = netlink;
        Underlay = underlay;
    }

    public FakeNetlink Netlink { get; }

    public LinkInfo Underlay { get; }

    public FakeTimeProvider Time { get; } = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z"));

    public MeterCapture Meters { get; } = new();

    public INetwork Network { get; private set; } = null!;

    public VxlanBackend Backend { get; private set; } = null!;

    public LinkInfo Device => Netlink.FindLink("flannel.1") ?? throw new InvalidOperationException("flannel.1 is missing");

    public static ExternalInterface External(LinkInfo underlay, string? publicIP = null) => new()
    {
        Name = underlay.Name,
        Index = underlay.Index,
        Mtu = underlay.Mtu,
        IfaceAddress = IPAddress.Parse("198.18.0.1"),
        PublicIP = IPAddress.Parse(publicIP ?? "198.18.0.1"),
    };

    public static NetworkConfig Config(string? backend = null) => new()
    {
        Network = ClusterNetwork,
        SubnetLen = 24,
        BackendType = "vxlan",
        Backend = backend ?? """{"Type":"vxlan"}""",
    };

    /// <summary>Registers the network, configures the own lease, and starts RunAsync (which waits for the first snapshot).</summary>
    public static async Task<VxlanHarness> StartAsync(
        string? backend = null,
        VxlanRouteMode mode = VxlanRouteMode.Classic,
        Action<FakeNetlink, LinkInfo>? prepare = null,
        LeaseAttributes? previous = null,
        FakeNetlink? netlink = null,
        Microsoft.Extensions.Logging.ILogger<VxlanBackend>? logger = null)
    {
        netlink ??= new FakeNetlink();
        LinkInfo underlay = netlink.FindLink("eth0") ?? netlink.AddUnderlay("eth0", "198.18.0.1/24");
        var harness = new VxlanHarness(netlink, underlay);
        prepare?.Invoke(netlink, underlay);
        harness.Backend = new VxlanBackend(
            netlink,
            Options.Create(new VxlanBackendOptions { RouteMode = mode }),
            harness.Time,
            logger,
            harness.Meters,
            sysctl: netlink);
        harness.Network = await harness.Backend.RegisterNetworkAsync(
            new BackendContext { Config = Config(backend), ExternalInterface = External(underlay), PreviousAttributes = previous },
            CancellationToken.None);
        await harness.Network.ConfigureLeaseAsync(new Lease { Subnet = OwnSubnet, Attributes = harness.Network.LeaseAttributes }, CancellationToken.None);
        harness._run = harness.Network.RunAsync(harness._events.Reader.ReadAllAsync(), harness._stop.Token);
        return harness;
    }

    public static MacAddress MacOf(int peer) => MacAddress.Parse($"0e:00:00:00:00:{peer:x2}");

    public static IPNetwork SubnetOf(int peer) => IPNetwork.Parse($"10.244.{peer}.0/24");

    public static Lease Peer(int peer, string? mac = null, string? publicIP = null, string backendType = "vxlan") => new()
    {
        Subnet = SubnetOf(peer),
        Attributes = new LeaseAttributes
        {
            PublicIP = IPAddress.Parse(publicIP ?? $"198.18.0.{peer}"),
            BackendType = backendType,
            BackendData = backendType == "vxlan" ? $"{{\"VNI\":1,\"VtepMAC\":\"{mac ?? MacOf(peer).ToString()}\"}}" : null,
        },
        Expiration = DateTimeOffset.Parse("2026-01-02T00:00:00Z"),
    };

    public static LeaseEvent Added(Lease lease) => new(LeaseEventType.Added, lease);

    public static LeaseEvent Removed(Lease lease) => new(LeaseEventType.Removed, lease);

    public ValueTask SendAsync(params LeaseEvent[] events) => _events.Writer.WriteAsync(events);

    /// <summary>Polls until <paramref name="condition"/> holds (the backend works on its own task).</summary>
    public static Task WaitUntilAsync(Func<bool> condition, string what) => Wait.UntilAsync(condition, what);

    /// <summary>Polls, advancing the fake clock by <paramref name="step"/> each time, until <paramref name="condition"/> holds.</summary>
    public Task WaitAdvancingAsync(Func<bool> condition, TimeSpan step, string what) =>
        Wait.UntilAsync(condition, what, new WaitOptions { BetweenPolls = () => Time.Advance(step) });

    public bool HasRoute(int peer) => Netlink.Routes.Any(r => r.Destination == SubnetOf(peer) && r.Protocol == RouteDefaults.ProtocolFlannel);

    public bool HasNeighbor(int peer, MacAddress? mac = null) => Netlink.Neighbors.Any(n =>
        n.LinkIndex == Device.Index && n.Address.Equals(SubnetOf(peer).BaseAddress) && n.IsPermanent && n.LinkLayerAddress == (mac ?? MacOf(peer)));

    public bool HasFdb(MacAddress mac, string destination) => Netlink.FdbEntries.Any(e =>
        e.LinkIndex == Device.Index && e.MacAddress == mac && Equals(e.Destination, IPAddress.Parse(destination)));

    /// <summary>True when all three objects of a classic vxlan peer are present and correct.</summary>
    public bool IsProgrammed(int peer, MacAddress? mac = null, string? publicIP = null)
    {
        MacAddress vtep = mac ?? MacOf(peer);
        IPAddress gateway = SubnetOf(peer).BaseAddress;
        return HasNeighbor(peer, vtep)
            && HasFdb(vtep, publicIP ?? $"198.18.0.{peer}")
            && Netlink.Routes.Any(r => r.Destination == SubnetOf(peer) && Equals(r.Gateway, gateway)
                && r.LinkIndex == Device.Index && r.OnLink && r.Protocol == RouteDefaults.ProtocolFlannel);
    }

    public bool HasNothingFor(int peer) =>
        !HasRoute(peer)
        && !Netlink.Neighbors.Any(n => n.Address.Equals(SubnetOf(peer).BaseAddress))
        && !Netlink.FdbEntries.Any(e => e.MacAddress == MacOf(peer));

    public async ValueTask DisposeAsync()
    {
        _events.Writer.TryComplete();
        await _stop.CancelAsync();
        if (_run is not null)
        {
            await _run;
        }

        _stop.Dispose();
        Meters.Dispose();
        await Netlink.DisposeAsync();
    }
}
