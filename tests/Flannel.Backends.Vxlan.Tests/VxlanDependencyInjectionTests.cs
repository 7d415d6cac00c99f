using Flannel.Backends.Vxlan;
using Flannel.Netlink;
using Flannel.Testing.FakeNetlink;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Flannel.Backends.Vxlan.Tests;

public sealed class VxlanDependencyInjectionTests
{
    [Fact]
    public void AddVxlanBackend_registers_a_keyed_backend_over_the_hosts_INetlink()
    {
        var services = new ServiceCollection();
        services.AddSingleton<INetlink>(new FakeNetlink());
        services.AddFlannel().AddVxlanBackend(o => o.RouteMode = VxlanRouteMode.NexthopObjects);
        using ServiceProvider provider = services.BuildServiceProvider();

        IBackend keyed = provider.GetRequiredKeyedService<IBackend>("vxlan");
        Assert.Equal("vxlan", keyed.BackendType);
        Assert.Same(keyed, Assert.Single(provider.GetServices<IBackend>()));
        Assert.Equal(VxlanRouteMode.NexthopObjects, provider.GetRequiredService<IOptions<VxlanBackendOptions>>().Value.RouteMode);
    }

    [Fact]
    public void AddVxlanBackend_does_not_register_an_INetlink()
    {
        var services = new ServiceCollection();
        services.AddFlannel().AddVxlanBackend().AddVxlanBackend();

        Assert.DoesNotContain(services, d => d.ServiceType == typeof(INetlink));
        Assert.Single(services, d => d.ServiceType == typeof(VxlanBackend));
    }
}
