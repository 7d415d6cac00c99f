using Flannel.Agent;
using Flannel.Backends;
using Flannel.Agent.Health;
using Flannel.Netlink;
using Flannel.Subnets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Flannel.Agent.Tests;

public sealed class FlannelAgentRegistrationTests
{
    private static AgentTestNetlink Node(string address) => new AgentTestNetlink()
        .AddLink(2, "eth0").AddAddress(2, address + "/24").AddDefaultRoute(2, "198.18.0.1");

    [Fact]
    public async Task Agents_in_separate_service_collections_get_their_own_netlink_store_and_backend_and_share_health()
    {
        string directory = Directory.CreateTempSubdirectory("flannel-named-").FullName;
        var log = new CallLog();
        var stores = new[] { new ScriptedSubnetStore(log), new ScriptedSubnetStore(log) };
        stores[1].LeaseSubnet = System.Net.IPNetwork.Parse("10.244.8.0/24");
        var backends = new[] { new RecordingBackend(log), new RecordingBackend(log) };
        var health = new FlannelHealth();
        var providers = new List<ServiceProvider>();
        for (int n = 0; n < 2; n++)
        {
            // One service collection per agent (what samples/Flannel.Demo does), one FlannelHealth for the process.
            var services = new ServiceCollection();
            services.AddSingleton(health);
            services.AddSingleton(typeof(Microsoft.Extensions.Logging.ILogger<>), typeof(Microsoft.Extensions.Logging.Abstractions.NullLogger<>));
            IFlannelBuilder flannel = services.AddFlannel();
            string address = $"198.18.0.{n + 2}";
            flannel.UseNetlink(_ => Node(address));
            flannel.Services.AddSingleton<ISubnetStore>(stores[n]);
            flannel.Services.AddSingleton<IBackend>(backends[n]);
            string name = $"node-{n + 1}";
            flannel.AddAgent(o =>
            {
                o.Name = name;
                o.SubnetFile = Path.Combine(directory, $"{name}.env");
            });
            providers.Add(services.BuildServiceProvider());
        }

        IHostedService[] hosted = [.. providers.SelectMany(p => p.GetServices<IHostedService>())];
        Assert.Equal(2, hosted.Length);
        foreach (IHostedService service in hosted)
        {
            await service.StartAsync(TestContext.Current.CancellationToken);
        }

        DateTime deadline = DateTime.UtcNow.AddSeconds(20);
        while (!health.IsReady && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }

        Assert.True(health.IsReady, health.NotReadyReason);
        Assert.Equal(["node-1", "node-2"], health.Agents.Select(a => a.AgentName).Order());
        Assert.Equal("198.18.0.2", backends[0].Context!.ExternalInterface.PublicIP!.ToString());
        Assert.Equal("198.18.0.3", backends[1].Context!.ExternalInterface.PublicIP!.ToString());
        Assert.Contains("FLANNEL_SUBNET=10.244.7.1/24", await File.ReadAllTextAsync(Path.Combine(directory, "node-1.env"), TestContext.Current.CancellationToken), StringComparison.Ordinal);
        Assert.Contains("FLANNEL_SUBNET=10.244.8.1/24", await File.ReadAllTextAsync(Path.Combine(directory, "node-2.env"), TestContext.Current.CancellationToken), StringComparison.Ordinal);

        foreach (IHostedService service in hosted)
        {
            await service.StopAsync(TestContext.Current.CancellationToken);
        }

        foreach (ServiceProvider provider in providers)
        {
            await provider.DisposeAsync();
        }

        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public void Options_bind_from_configuration_and_invalid_values_fail_validation()
    {
        IConfiguration configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["SubnetFile"] = "/tmp/x.env",
            ["IpMasq"] = "true",
            ["Iface:0"] = "eth1",
            ["Iface:1"] = "198.18.0.2",
            ["IptablesResync"] = "00:00:10",
            ["SubnetLeaseRenewMarginMinutes"] = "2000",
        }).Build();
        var services = new ServiceCollection();
        services.AddFlannel().AddAgent(configuration);
        using ServiceProvider provider = services.BuildServiceProvider();
        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<FlannelAgentOptions>>().Value);
        Assert.Contains("--subnet-lease-renew-margin=2000", error.Message, StringComparison.Ordinal);

        var services2 = new ServiceCollection();
        configuration["SubnetLeaseRenewMarginMinutes"] = "30";
        services2.AddFlannel().AddAgent(configuration);
        using ServiceProvider provider2 = services2.BuildServiceProvider();
        FlannelAgentOptions options = provider2.GetRequiredService<IOptions<FlannelAgentOptions>>().Value;
        Assert.Equal("/tmp/x.env", options.SubnetFile);
        Assert.True(options.IpMasq);
        Assert.Equal(["eth1", "198.18.0.2"], options.Iface);
        Assert.Equal(TimeSpan.FromSeconds(10), options.IptablesResync);
    }

    [Fact]
    public async Task UseNetlink_counts_kernel_writes_and_errors_per_agent()
    {
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        var measurements = new List<(string Name, long Value, string Tags)>();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Flannel")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            lock (measurements)
            {
                measurements.Add((instrument.Name, value, string.Join(",", tags.ToArray().Select(t => $"{t.Key}={t.Value}"))));
            }
        });
        listener.Start();

        var services = new ServiceCollection();
        services.AddFlannel().UseNetlink(_ => new AgentTestNetlink { ReplaceRouteHook = _ => throw new NetlinkException("RTM_NEWROUTE", 101, "ENETUNREACH", 1, null, null) }).AddAgent(o => o.Name = "metered");
        await using ServiceProvider provider = services.BuildServiceProvider();
        INetlink netlink = provider.GetRequiredService<INetlink>();
        await Assert.ThrowsAsync<NetlinkException>(async () => await netlink.ReplaceRouteAsync(
            new RouteSpec { Destination = System.Net.IPNetwork.Parse("10.244.2.0/24") }, TestContext.Current.CancellationToken));

        // Other tests' instruments on the shared meter name report concurrently: assert on a copy.
        List<(string Name, long Value, string Tags)> seen;
        lock (measurements)
        {
            seen = [.. measurements];
        }

        Assert.Contains(seen, m => m.Name == "flannel.netlink.errors" && m.Tags.Contains("agent=metered", StringComparison.Ordinal) && m.Tags.Contains("errno=ENETUNREACH", StringComparison.Ordinal));
    }
}
