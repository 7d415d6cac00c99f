using Flannel.Agent;
using Flannel.Agent.Health;
using Flannel.Agent.Metrics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Flannel.Testing;

namespace Flannel.Agent.Tests;

/// <summary>One agent wired to the test doubles, on a fake clock, with its subnet.env in a temporary directory.</summary>
internal sealed class AgentHarness : IAsyncDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("flannel-agent-test-").FullName;

    public AgentHarness(Action<FlannelAgentOptions>? configure = null, bool withTrafficRules = true, Flannel.Agent.Probing.IEchoProber? echo = null)
    {
        Netlink = new AgentTestNetlink()
            .AddLink(1, "lo", 65536).AddAddress(1, "127.0.0.1/8")
            .AddLink(2, "eth0").AddAddress(2, "198.18.0.2/24")
            .AddDefaultRoute(2, "198.18.0.1");
        Store = new ScriptedSubnetStore(Log);
        Backend = new RecordingBackend(Log);
        Traffic = withTrafficRules ? new RecordingTrafficRules(Log) : null;
        Options = new FlannelAgentOptions { Name = "node-1", SubnetFile = Path.Combine(_directory, "subnet.env") };
        configure?.Invoke(Options);
        Metrics = new FlannelMetrics(Meters);
        Agent = new FlannelAgent(
            Microsoft.Extensions.Options.Options.Create(Options),
            Store,
            [Backend],
            Netlink,
            Health,
            Metrics,
            Time,
            NullLogger<FlannelAgent>.Instance,
            Traffic,
            echoProber: echo);
    }

    public CallLog Log { get; } = new();

    public FakeTimeProvider Time { get; } = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    public AgentTestNetlink Netlink { get; }

    public ScriptedSubnetStore Store { get; }

    public RecordingBackend Backend { get; }

    public RecordingTrafficRules? Traffic { get; }

    public FlannelAgentOptions Options { get; }

    public FlannelHealth Health { get; } = new();

    /// <summary>The agent's measurements, private to this test.</summary>
    public Flannel.Testing.FakeNetlink.MeterCapture Meters { get; } = new();

    public FlannelMetrics Metrics { get; }

    public FlannelAgent Agent { get; }

    public string SubnetFile => Options.SubnetFile;

    public Task StartAsync() => Agent.StartAsync(TestContext.Current.CancellationToken);

    /// <summary>Waits (real time, bounded) until <paramref name="condition"/> holds, advancing the fake clock by <paramref name="step"/> between checks.</summary>
    public async Task WaitUntilAsync(Func<bool> condition, TimeSpan? step = null, string? what = null)
    {
        try
        {
            await Wait.UntilAsync(condition, what ?? "the condition", new WaitOptions { BetweenPolls = step is { } advance ? () => Time.Advance(advance) : null });
        }
        catch (TimeoutException e)
        {
            Assert.Fail($"{e.Message}; calls: {string.Join(", ", Log.Calls)}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Agent.StopAsync(CancellationToken.None);
        Agent.Dispose();
        Metrics.Dispose();
        Meters.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
