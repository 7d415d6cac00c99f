using System.Net;
using System.Threading.Channels;
using Flannel.Backends;
using Flannel.Configuration;
using Flannel.Netlink;
using Flannel.Subnets;
using Flannel.Testing;
using Flannel.Testing.FakeNetlink;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Example.StaticRoutes.Tests;

public sealed class StaticRoutesBackendTests
{
    private static readonly NetworkConfig Config =
        NetworkConfig.Parse("""{"Network":"10.244.0.0/16","Backend":{"Type":"static-routes","Gateway":"198.18.0.254"}}""");

    private static readonly IPAddress Gateway = IPAddress.Parse("198.18.0.254");

    private static Lease Peer(int n) => new()
    {
        Subnet = IPNetwork.Parse($"10.244.{n}.0/24"),
        Attributes = new LeaseAttributes { PublicIP = IPAddress.Parse($"198.18.0.{n}"), BackendType = StaticRoutesBackend.TypeName },
    };

    private static bool HasRouteViaGateway(FakeNetlink netlink, int n) => netlink.Routes.Any(r =>
        r.Destination == IPNetwork.Parse($"10.244.{n}.0/24") && Gateway.Equals(r.Gateway) && r.Protocol == RouteDefaults.ProtocolFlannel);

    [Fact]
    public async Task Remote_subnets_are_routed_via_the_gateway_removed_with_their_lease_and_repaired_after_drift()
    {
        var netlink = new FakeNetlink();
        var time = new FakeTimeProvider();
        using var meters = new MeterCapture();
        LinkInfo eth0 = netlink.AddUnderlay("eth0", "198.18.0.1/24");
        var backend = new StaticRoutesBackend(netlink, time, TimeSpan.FromSeconds(10), meterFactory: meters);
        INetwork network = await backend.RegisterNetworkAsync(
            new BackendContext
            {
                Config = Config,
                ExternalInterface = new ExternalInterface { Name = "eth0", Index = eth0.Index, Mtu = eth0.Mtu, IfaceAddress = IPAddress.Parse("198.18.0.1") },
            },
            CancellationToken.None);
        Assert.Equal(IPAddress.Parse("198.18.0.1"), network.LeaseAttributes.PublicIP);
        await network.ConfigureLeaseAsync(new Lease { Subnet = IPNetwork.Parse("10.244.1.0/24"), Attributes = network.LeaseAttributes }, CancellationToken.None);

        var leases = Channel.CreateUnbounded<IReadOnlyList<LeaseEvent>>();
        using var stop = new CancellationTokenSource();
        Task run = network.RunAsync(leases.Reader.ReadAllAsync(TestContext.Current.CancellationToken), stop.Token);

        await leases.Writer.WriteAsync([new LeaseEvent(LeaseEventType.Added, Peer(2)), new LeaseEvent(LeaseEventType.Added, Peer(3))], TestContext.Current.CancellationToken);
        await Wait.UntilAsync(() => HasRouteViaGateway(netlink, 2) && HasRouteViaGateway(netlink, 3), "routes to both peers via the gateway");

        await leases.Writer.WriteAsync([new LeaseEvent(LeaseEventType.Removed, Peer(2))], TestContext.Current.CancellationToken);
        await Wait.UntilAsync(() => !netlink.Routes.Any(r => r.Destination == Peer(2).Subnet), "the removed peer's route is deleted");

        // Someone deletes the other route by hand: the next resync puts it back.
        Assert.Equal(1, netlink.RemoveRoutesBehindBack(r => r.Destination == Peer(3).Subnet));
        await Wait.UntilAsync(
            () => HasRouteViaGateway(netlink, 3),
            "the hand-deleted route is restored",
            new WaitOptions { BetweenPolls = () => time.Advance(TimeSpan.FromSeconds(10)) });

        leases.Writer.Complete();
        await stop.CancelAsync();
        await run;
    }

    [Fact]
    public async Task A_config_without_a_gateway_is_refused_naming_the_field()
    {
        var netlink = new FakeNetlink();
        LinkInfo eth0 = netlink.AddUnderlay("eth0", "198.18.0.1/24");
        var backend = new StaticRoutesBackend(netlink, new FakeTimeProvider(), TimeSpan.FromSeconds(10));
        NetworkConfig noGateway = NetworkConfig.Parse("""{"Network":"10.244.0.0/16","Backend":{"Type":"static-routes"}}""");

        NetworkConfigException error = await Assert.ThrowsAsync<NetworkConfigException>(async () => await backend.RegisterNetworkAsync(
            new BackendContext { Config = noGateway, ExternalInterface = new ExternalInterface { Name = "eth0", Index = eth0.Index, Mtu = eth0.Mtu, IfaceAddress = IPAddress.Parse("198.18.0.1") } },
            CancellationToken.None));

        Assert.Equal("Backend.Gateway", error.Field);
    }

    [Fact]
    public void The_backend_registers_like_the_built_in_ones_keyed_by_its_type()
    {
        var services = new ServiceCollection();
        services.AddSingleton<INetlink>(new FakeNetlink());
        services.AddFlannel().AddStaticRoutesBackend(TimeSpan.FromSeconds(10)).AddStaticRoutesBackend();

        using ServiceProvider provider = services.BuildServiceProvider();
        IBackend backend = provider.GetRequiredKeyedService<IBackend>(StaticRoutesBackend.TypeName);
        Assert.IsType<StaticRoutesBackend>(backend);
        Assert.Same(backend, Assert.Single(provider.GetServices<IBackend>()));
    }
}
