using Flannel.Backends;
using Microsoft.Extensions.DependencyInjection;

namespace Flannel.Core.Tests.DependencyInjection;

/// <summary>The one backend registration every backend package uses, and a third party can.</summary>
public sealed class AddBackendTests
{
    private sealed class RoutesBackend : IBackend
    {
        public string BackendType => "static-routes";

        public ValueTask<INetwork> RegisterNetworkAsync(BackendContext context, CancellationToken cancellationToken) =>
            throw new NotSupportedException();
    }

    private sealed class OtherBackend : IBackend
    {
        public string BackendType => "other";

        public ValueTask<INetwork> RegisterNetworkAsync(BackendContext context, CancellationToken cancellationToken) =>
            throw new NotSupportedException();
    }

    [Fact]
    public void The_backend_is_one_singleton_keyed_by_its_type_and_in_the_list_and_adding_it_twice_changes_nothing()
    {
        var services = new ServiceCollection();
        services.AddFlannel().AddBackend<RoutesBackend>("static-routes").AddBackend<OtherBackend>("other");
        int registrations = services.Count;
        services.AddFlannel().AddBackend<RoutesBackend>("static-routes");
        Assert.Equal(registrations, services.Count);

        using ServiceProvider provider = services.BuildServiceProvider();
        RoutesBackend backend = provider.GetRequiredService<RoutesBackend>();
        Assert.Same(backend, provider.GetRequiredKeyedService<IBackend>("static-routes"));
        Assert.IsType<OtherBackend>(provider.GetRequiredKeyedService<IBackend>("other"));
        Assert.Equal(["static-routes", "other"], provider.GetServices<IBackend>().Select(b => b.BackendType));
        Assert.Null(provider.GetKeyedService<IBackend>("vxlan"));
    }

    [Fact]
    public void A_type_name_serves_one_backend_and_a_backend_one_type_name()
    {
        var services = new ServiceCollection();
        IFlannelBuilder flannel = services.AddFlannel().AddBackend<RoutesBackend>("static-routes");

        var taken = Assert.Throws<InvalidOperationException>(() => flannel.AddBackend<OtherBackend>("static-routes"));
        Assert.Equal("backend type \"static-routes\" is already served by another backend; OtherBackend cannot serve it too", taken.Message);
        var twice = Assert.Throws<InvalidOperationException>(() => flannel.AddBackend<RoutesBackend>("routes"));
        Assert.Equal("RoutesBackend is already registered for another backend type; it cannot also serve \"routes\"", twice.Message);
        Assert.Throws<ArgumentException>(() => flannel.AddBackend<OtherBackend>(" "));
    }
}
