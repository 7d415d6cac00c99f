using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Flannel.Agent.Health;

/// <summary>
/// flanneld's readiness as a health check: healthy when every agent registered in <see cref="FlannelHealth"/> has
/// written its subnet.env and nothing (the lease watch, the store) reports a problem; unhealthy with the first
/// agent's reason otherwise. Add it with <c>AddHealthChecks().AddFlannelReadiness()</c> and map it in your own web
/// server (ASP.NET Core: <c>MapHealthChecks("/readyz", …)</c>); <c>samples/Flannel.Host</c> serves flanneld's texts.
/// </summary>
public sealed class FlannelReadinessHealthCheck : IHealthCheck
{
    /// <summary>The registration name.</summary>
    public const string Name = "flannel";

    /// <summary>The tag on the registration, to select readiness checks when mapping an endpoint.</summary>
    public const string ReadyTag = "ready";

    private readonly FlannelHealth _health;

    /// <summary>Creates the check over the process's agents.</summary>
    public FlannelReadinessHealthCheck(FlannelHealth health)
    {
        ArgumentNullException.ThrowIfNull(health);
        _health = health;
    }

    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        string? reason = _health.NotReadyReason;
        return Task.FromResult(reason is null
            ? HealthCheckResult.Healthy("flanneld is ready")
            : new HealthCheckResult(context?.Registration.FailureStatus ?? HealthStatus.Unhealthy, reason));
    }
}
