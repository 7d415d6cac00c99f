using Example.StaticRoutes;
using Flannel.Netlink;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the static-routes backend, the way the built-in backend packages register theirs.</summary>
public static class StaticRoutesFlannelBuilderExtensions
{
    /// <summary>Adds the <c>static-routes</c> backend: an <c>IBackend</c> keyed <c>"static-routes"</c>. The host registers <see cref="INetlink"/>.</summary>
    /// <param name="builder">The Flannel builder.</param>
    /// <param name="resyncInterval">How often the kernel is compared with the desired routes; 30 s when null.</param>
    public static IFlannelBuilder AddStaticRoutesBackend(this IFlannelBuilder builder, TimeSpan? resyncInterval = null) =>
        builder.AddBackend(StaticRoutesBackend.TypeName, services => new StaticRoutesBackend(
            services.GetRequiredService<INetlink>(),
            services.GetService<TimeProvider>() ?? TimeProvider.System,
            resyncInterval ?? TimeSpan.FromSeconds(30),
            services.GetService<ILogger<StaticRoutesBackend>>(),
            services.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
}
