using System.Diagnostics.CodeAnalysis;
using Flannel.Backends;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a backend the way every backend package does, built-in or third-party.</summary>
public static class BackendFlannelBuilderExtensions
{
    /// <summary>
    /// Adds <typeparamref name="TBackend"/> as a singleton, as the <see cref="IBackend"/> keyed
    /// <paramref name="typeName"/> (net-conf.json's <c>Backend.Type</c>, which the agent resolves) and in the unkeyed
    /// <see cref="IBackend"/> list. Adding the same backend again changes nothing.
    /// </summary>
    /// <remarks>
    /// A backend package's own <c>Add…Backend()</c> calls this and then adds its options, e.g.
    /// <c>builder.AddBackend&lt;StaticRoutesBackend&gt;("static-routes")</c>.
    /// </remarks>
    /// <param name="builder">The Flannel builder.</param>
    /// <param name="typeName">The backend type it serves, e.g. <c>vxlan</c>.</param>
    /// <exception cref="InvalidOperationException">Another backend already serves <paramref name="typeName"/>, or
    /// <typeparamref name="TBackend"/> already serves another type.</exception>
    public static IFlannelBuilder AddBackend<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TBackend>(
        this IFlannelBuilder builder, string typeName)
        where TBackend : class, IBackend =>
        Add<TBackend>(builder, typeName, static services => services.AddSingleton<TBackend>());

    /// <summary>
    /// Adds <typeparamref name="TBackend"/>, made by <paramref name="factory"/>, as
    /// <see cref="AddBackend{TBackend}(IFlannelBuilder, string)"/> does: for a backend whose constructor takes more
    /// than services, e.g. <c>AddBackend("static-routes", sp => new StaticRoutesBackend(…, TimeSpan.FromSeconds(10)))</c>.
    /// </summary>
    /// <param name="builder">The Flannel builder.</param>
    /// <param name="typeName">The backend type it serves, e.g. <c>vxlan</c>.</param>
    /// <param name="factory">Makes the backend, once.</param>
    /// <exception cref="InvalidOperationException">Another backend already serves <paramref name="typeName"/>, or
    /// <typeparamref name="TBackend"/> already serves another type.</exception>
    public static IFlannelBuilder AddBackend<TBackend>(this IFlannelBuilder builder, string typeName, Func<IServiceProvider, TBackend> factory)
        where TBackend : class, IBackend
    {
        ArgumentNullException.ThrowIfNull(factory);
        return Add<TBackend>(builder, typeName, services => services.AddSingleton(factory));
    }

    private static IFlannelBuilder Add<TBackend>(IFlannelBuilder builder, string typeName, Action<IServiceCollection> addBackend)
        where TBackend : class, IBackend
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(typeName);
        IServiceCollection services = builder.Services;
        ServiceDescriptor? serving = services.FirstOrDefault(d =>
            d.IsKeyedService && d.ServiceType == typeof(IBackend) && Equals(d.ServiceKey, typeName));
        bool registered = services.Any(d => !d.IsKeyedService && d.ServiceType == typeof(TBackend));
        if (registered && serving is not null && ReferenceEquals(serving.KeyedImplementationFactory, BackendFactory<TBackend>.Keyed))
        {
            return builder;
        }

        if (serving is not null)
        {
            throw new InvalidOperationException($"backend type \"{typeName}\" is already served by another backend; {typeof(TBackend).Name} cannot serve it too");
        }

        if (registered)
        {
            throw new InvalidOperationException($"{typeof(TBackend).Name} is already registered for another backend type; it cannot also serve \"{typeName}\"");
        }

        addBackend(services);
        services.AddKeyedSingleton<IBackend>(typeName, BackendFactory<TBackend>.Keyed);
        services.AddSingleton<IBackend>(BackendFactory<TBackend>.Unkeyed);
        return builder;
    }

    // One delegate per backend type, so that a second AddBackend call recognises the first one's registration.
    private static class BackendFactory<TBackend>
        where TBackend : class, IBackend
    {
        public static readonly Func<IServiceProvider, object?, IBackend> Keyed = static (services, _) => services.GetRequiredService<TBackend>();

        public static readonly Func<IServiceProvider, IBackend> Unkeyed = static services => services.GetRequiredService<TBackend>();
    }
}
