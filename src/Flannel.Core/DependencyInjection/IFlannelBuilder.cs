namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Returned by <see cref="FlannelServiceCollectionExtensions.AddFlannel(IServiceCollection)"/>; the subnet store
/// and backend packages add their <c>Add…</c> methods to it (<c>AddVxlanBackend()</c>,
/// <c>AddEtcdSubnetStore(…)</c>, …).
/// </summary>
public interface IFlannelBuilder
{
    /// <summary>The service collection being configured.</summary>
    IServiceCollection Services { get; }
}
