using Flannel.Backends.Alloc;
using Flannel.Backends;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the alloc backend.</summary>
public static class AllocFlannelBuilderExtensions
{
    /// <summary>Adds the <c>alloc</c> backend: an <see cref="IBackend"/> keyed <c>"alloc"</c> (and in the unkeyed list).</summary>
    public static IFlannelBuilder AddAllocBackend(this IFlannelBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        IServiceCollection services = builder.Services;
        if (!services.Any(d => d.ServiceType == typeof(AllocBackend)))
        {
            services.AddSingleton<AllocBackend>();
            services.AddKeyedSingleton<IBackend>(AllocBackend.TypeName, static (sp, _) => sp.GetRequiredService<AllocBackend>());
            services.AddSingleton<IBackend>(static sp => sp.GetRequiredService<AllocBackend>());
        }

        return builder;
    }
}
