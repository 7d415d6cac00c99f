using Flannel.Agent.Health;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Flannel.Agent.Tests;

public sealed class ReadinessTests
{
    [Fact]
    public void A_process_with_several_agents_is_ready_only_when_all_are()
    {
        var health = new FlannelHealth();
        Assert.False(health.IsReady);
        Assert.Equal("no agent registered", health.NotReadyReason);
        AgentReadiness one = health.Register("node-1");
        AgentReadiness two = health.Register("node-2");
        one.MarkStarted();
        Assert.Equal("node-2: starting", health.NotReadyReason);
        two.MarkStarted();
        Assert.True(health.IsReady);
    }

    [Fact]
    public void A_store_problem_explains_the_startup_step_it_blocks()
    {
        var readiness = new AgentReadiness("n1");
        string? storeProblem = "node \"n1\" has no podCIDR yet";
        readiness.SetStoreStatus(() => storeProblem);
        readiness.SetPhase("acquiring a subnet lease");
        Assert.Equal("acquiring a subnet lease: node \"n1\" has no podCIDR yet", readiness.NotReadyReason);
        storeProblem = null;
        Assert.Equal("acquiring a subnet lease", readiness.NotReadyReason);
        readiness.MarkStarted();
        Assert.True(readiness.IsReady);
        readiness.SetWatchProblem("the lease watch failed: boom");
        Assert.Equal("the lease watch failed: boom", readiness.NotReadyReason);
    }

    [Fact]
    public async Task The_readiness_health_check_reports_every_agent_through_the_health_check_service()
    {
        var services = new ServiceCollection();
        var health = new FlannelHealth();
        services.AddSingleton(health);
        services.AddSingleton(typeof(Microsoft.Extensions.Logging.ILogger<>), typeof(Microsoft.Extensions.Logging.Abstractions.NullLogger<>));
        services.AddHealthChecks().AddFlannelReadiness();
        await using ServiceProvider provider = services.BuildServiceProvider();
        HealthCheckService checks = provider.GetRequiredService<HealthCheckService>();

        AgentReadiness readiness = health.Register("node-1");
        HealthReport starting = await checks.CheckHealthAsync(TestContext.Current.CancellationToken);
        Assert.Equal(HealthStatus.Unhealthy, starting.Status);
        HealthReportEntry entry = starting.Entries[FlannelReadinessHealthCheck.Name];
        Assert.Equal("starting", entry.Description);
        Assert.Contains(FlannelReadinessHealthCheck.ReadyTag, entry.Tags);

        readiness.MarkStarted();
        Assert.Equal(HealthStatus.Healthy, (await checks.CheckHealthAsync(TestContext.Current.CancellationToken)).Status);

        readiness.SetWatchProblem("the lease watch failed: etcd down");
        HealthReport down = await checks.CheckHealthAsync(TestContext.Current.CancellationToken);
        Assert.Equal(("the lease watch failed: etcd down", HealthStatus.Unhealthy), (down.Entries[FlannelReadinessHealthCheck.Name].Description, down.Status));
    }
}
