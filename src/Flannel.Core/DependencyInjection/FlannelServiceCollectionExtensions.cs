using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Flannel.NET in a service collection.</summary>
public static class FlannelServiceCollectionExtensions
{
    /// <summary>
    /// Adds the services every Flannel.NET agent needs (<see cref="TimeProvider"/>) and returns a builder on
    /// which a subnet store and a backend are chosen.
    /// </summary>
    public static IFlannelBuilder AddFlannel(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(TimeProvider.System);
        return new FlannelBuilder(services);
    }

    private sealed class FlannelBuilder(IServiceCollection services) : IFlannelBuilder
    {
        public IServiceCollection Services { get; } = services;
    }
}
