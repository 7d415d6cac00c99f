using System.Net;
using Flannel.Backends;
using Flannel.Backends.Alloc;
using Flannel.Backends.Extension;
using Flannel.Configuration;
using Flannel.Subnets;
using Flannel.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Flannel.Backends.Extension.Tests;

/// <summary>The extension backend with real shell scripts: what they see (environment, stdin) and what they leave behind.</summary>
public sealed class ExtensionBackendTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("ext-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private static ExternalInterface External => new()
    {
        Name = "eth0",
        Index = 2,
        Mtu = 1500,
        IfaceAddress = IPAddress.Parse("198.18.0.11"),
        PublicIP = IPAddress.Parse("198.18.0.11"),
    };

    private static NetworkConfig Config(string backend) =>
        NetworkConfig.Parse($$"""{"Network":"10.244.0.0/16","Backend":{{backend}}}""");

    private static ExtensionBackend Backend(TimeSpan? timeout = null) =>
        new(Options.Create(new ExtensionBackendOptions { CommandTimeout = timeout ?? TimeSpan.FromSeconds(20) }));

    private static string Json(string value) => System.Text.Json.JsonSerializer.Serialize(value);

    private static Lease Peer(string subnet, string publicIP, string? backendData, string type = "extension") => new()
    {
        Subnet = IPNetwork.Parse(subnet),
        Attributes = new LeaseAttributes { PublicIP = IPAddress.Parse(publicIP), BackendType = type, BackendData = backendData },
        Expiration = DateTimeOffset.UnixEpoch.AddDays(30000),
    };

    private static async IAsyncEnumerable<IReadOnlyList<LeaseEvent>> Batches(IEnumerable<IReadOnlyList<LeaseEvent>> batches)
    {
        foreach (IReadOnlyList<LeaseEvent> batch in batches)
        {
            yield return batch;
            await Task.Yield();
        }
    }

    [Fact]
    public async Task PreStartupCommand_output_becomes_BackendData_as_flannel_marshals_it()
    {
        INetwork network = await Backend().RegisterNetworkAsync(
            new BackendContext { Config = Config($$"""{"Type":"extension","PreStartupCommand":"printf '  key <a&b>\\n\"q\"\\tend  '; echo err >&2"}"""), ExternalInterface = External },
            TestContext.Current.CancellationToken);

        Assert.Equal("extension", network.LeaseAttributes.BackendType);
        Assert.Equal(IPAddress.Parse("198.18.0.11"), network.LeaseAttributes.PublicIP);
        Assert.Equal(1500, network.Mtu);
        // Combined stdout and stderr, trimmed; Go escapes <, >, & and control characters.
        Assert.Equal("\"key \\u003ca\\u0026b\\u003e\\n\\\"q\\\"\\tend  err\"", network.LeaseAttributes.BackendData);
        Assert.Equal(
            """{"PublicIP":"198.18.0.11","PublicIPv6":null,"BackendType":"extension","BackendData":"key \u003ca\u0026b\u003e\n\"q\"\tend  err"}""",
            LeaseJson.Serialize(network.LeaseAttributes));
    }

    [Fact]
    public async Task Without_a_PreStartupCommand_there_is_no_BackendData()
    {
        INetwork network = await Backend().RegisterNetworkAsync(new BackendContext { Config = Config("""{"Type":"extension"}"""), ExternalInterface = External }, TestContext.Current.CancellationToken);
        Assert.Equal("""{"PublicIP":"198.18.0.11","PublicIPv6":null,"BackendType":"extension"}""", LeaseJson.Serialize(network.LeaseAttributes));
    }

    [Fact]
    public async Task A_failing_PreStartupCommand_fails_registration_with_flannels_message()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(async () => await Backend().RegisterNetworkAsync(
            new BackendContext { Config = Config("""{"Type":"extension","PreStartupCommand":"echo boom; exit 3"}"""), ExternalInterface = External },
            TestContext.Current.CancellationToken));
        Assert.Equal("failed to run command: echo boom; exit 3 Err: exit status 3 Output: boom", error.Message);
    }

    [Fact]
    public async Task PostStartupCommand_sees_NETWORK_SUBNET_and_PUBLIC_IP_once_per_subnet()
    {
        string log = Path.Combine(_work, "post.log");
        INetwork network = await Backend().RegisterNetworkAsync(
            new BackendContext { Config = Config($$"""{"Type":"extension","PostStartupCommand":"echo \"$NETWORK $SUBNET $PUBLIC_IP\" >> {{log}}"}"""), ExternalInterface = External },
            TestContext.Current.CancellationToken);
        Lease own = Peer("10.244.7.0/24", "198.18.0.11", null);

        await network.ConfigureLeaseAsync(own, TestContext.Current.CancellationToken);
        await network.ConfigureLeaseAsync(own with { Revision = 2 }, TestContext.Current.CancellationToken); // a renewal

        Assert.Equal(["10.244.0.0/16 10.244.7.0/24 198.18.0.11"], await File.ReadAllLinesAsync(log, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Subnet_commands_get_flannels_environment_and_the_peers_BackendData_on_stdin()
    {
        string log = Path.Combine(_work, "subnets.log");
        string add = $"read -r data; echo \"add $SUBNET $PUBLIC_IP [$data]\" >> {log}";
        string remove = $"read -r data; echo \"remove $SUBNET $PUBLIC_IP [$data]\" >> {log}";
        INetwork network = await Backend().RegisterNetworkAsync(
            new BackendContext { Config = Config($$"""{"Type":"extension","SubnetAddCommand":{{Json(add)}},"SubnetRemoveCommand":{{Json(remove)}}}"""), ExternalInterface = External },
            TestContext.Current.CancellationToken);

        Lease a = Peer("10.244.2.0/24", "198.18.0.12", "\"peer-a data\"");
        Lease b = Peer("10.244.3.0/24", "198.18.0.13", null);
        Lease vxlan = Peer("10.244.4.0/24", "198.18.0.14", """{"VNI":1}""", type: "vxlan");
        Lease hostile = Peer("10.244.5.0/24", "198.18.0.15", """{"not":"a string"}""");
        await network.RunAsync(
            Batches(
            [
                [new(LeaseEventType.Added, a), new(LeaseEventType.Added, b), new(LeaseEventType.Added, vxlan), new(LeaseEventType.Added, hostile)],
                [new(LeaseEventType.Removed, a)],
            ]),
            TestContext.Current.CancellationToken);

        Assert.Equal(
            [
                "add 10.244.2.0/24 198.18.0.12 [peer-a data]",
                "add 10.244.3.0/24 198.18.0.13 []",
                "remove 10.244.2.0/24 198.18.0.12 [peer-a data]",
            ],
            await File.ReadAllLinesAsync(log, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_failing_subnet_command_is_logged_and_the_next_peer_is_still_handled()
    {
        string log = Path.Combine(_work, "subnets.log");
        string add = $"if [ \"$SUBNET\" = 10.244.2.0/24 ]; then echo nope >&2; exit 1; fi; echo \"$SUBNET\" >> {log}";
        INetwork network = await Backend().RegisterNetworkAsync(
            new BackendContext { Config = Config($$"""{"Type":"extension","SubnetAddCommand":{{Json(add)}}}"""), ExternalInterface = External },
            TestContext.Current.CancellationToken);
        await network.RunAsync(
            Batches([[new(LeaseEventType.Added, Peer("10.244.2.0/24", "198.18.0.12", null)), new(LeaseEventType.Added, Peer("10.244.3.0/24", "198.18.0.13", null))]]),
            TestContext.Current.CancellationToken);
        Assert.Equal(["10.244.3.0/24"], await File.ReadAllLinesAsync(log, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_command_that_outlives_its_timeout_is_killed_with_its_children()
    {
        string marker = Path.Combine(_work, "child.pid");
        var runner = new ExtensionCommandRunner(new ExtensionBackendOptions { CommandTimeout = TimeSpan.FromMilliseconds(500) });
        var started = DateTime.UtcNow;
        ExtensionCommandResult result = await runner.RunAsync($"echo started; sleep 300 & echo $! > {marker}; wait", new Dictionary<string, string>(), string.Empty, TestContext.Current.CancellationToken);

        Assert.False(result.Succeeded);
        Assert.Equal("timed out after 0.5s and was killed", result.Error);
        Assert.Equal("started", result.Output);
        // Not a timing assertion: a runner that waited for the orphaned child (its stdout stays open) would take 300 s.
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromMinutes(2), "RunAsync waited for the killed command's child");
        int child = int.Parse(File.ReadAllText(marker).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        // The kill is signalled to the whole process group; the orphaned child is reaped by init in its own time.
        await Wait.UntilAsync(() => !IsRunning(child), $"the command's child {child} to be gone");
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            return !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    [Theory]
    [InlineData("""{"Type":"extension","SubnetAddCommand":["ip","route"]}""", "error decoding backend config: SubnetAddCommand must be a string (a shell command), got [\"ip\",\"route\"]")]
    [InlineData("""{"Type":"extension","presTARTupcommand":7}""", "error decoding backend config: PreStartupCommand must be a string (a shell command), got 7")]
    public async Task Malformed_commands_are_rejected_naming_the_field(string backend, string message)
    {
        var error = await Assert.ThrowsAsync<NetworkConfigException>(async () =>
            await Backend().RegisterNetworkAsync(new BackendContext { Config = Config(backend), ExternalInterface = External }, TestContext.Current.CancellationToken));
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public async Task Alloc_publishes_only_the_public_ip_and_programs_nothing()
    {
        var services = new ServiceCollection();
        services.AddFlannel().AddAllocBackend().AddExtensionBackend();
        using ServiceProvider provider = services.BuildServiceProvider();
        IBackend backend = provider.GetRequiredKeyedService<IBackend>("alloc");
        Assert.IsType<ExtensionBackend>(provider.GetRequiredKeyedService<IBackend>("extension"));

        INetwork network = await backend.RegisterNetworkAsync(new BackendContext { Config = Config("""{"Type":"alloc"}"""), ExternalInterface = External }, TestContext.Current.CancellationToken);

        Assert.Equal("""{"PublicIP":"198.18.0.11","PublicIPv6":null}""", LeaseJson.Serialize(network.LeaseAttributes));
        Assert.Equal(1500, network.Mtu);
        await network.ConfigureLeaseAsync(Peer("10.244.7.0/24", "198.18.0.11", null), TestContext.Current.CancellationToken);
        await network.RunAsync(Batches([[new(LeaseEventType.Added, Peer("10.244.2.0/24", "198.18.0.12", null))]]), TestContext.Current.CancellationToken);
    }
}
