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
        return builder.AddBackend<AllocBackend>(AllocBackend.TypeName);
    }
}
