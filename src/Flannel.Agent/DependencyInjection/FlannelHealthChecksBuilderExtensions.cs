using Flannel.Agent.Health;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds flannel's readiness to ASP.NET Core / Microsoft.Extensions health checks.</summary>
public static class FlannelHealthChecksBuilderExtensions
{
    /// <summary>
    /// Adds <see cref="FlannelReadinessHealthCheck"/> named <see cref="FlannelReadinessHealthCheck.Name"/> and tagged
    /// <see cref="FlannelReadinessHealthCheck.ReadyTag"/>. It reports every agent registered in the process's
    /// <see cref="FlannelHealth"/>.
    /// </summary>
    public static IHealthChecksBuilder AddFlannelReadiness(this IHealthChecksBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddSingleton<FlannelHealth>();
        builder.Services.TryAddSingleton<FlannelReadinessHealthCheck>();
        return builder.AddCheck<FlannelReadinessHealthCheck>(FlannelReadinessHealthCheck.Name, tags: [FlannelReadinessHealthCheck.ReadyTag]);
    }
}
