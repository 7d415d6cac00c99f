using Flannel.Netlink.WireGuard;
using Flannel.Testing.FakeNetlink;

namespace Flannel.Backends.WireGuard.Tests.Conformance;

/// <summary>The WireGuard rules against FakeWireGuard (the same cases run against wireguard-go in the integration tests).</summary>
public sealed class FakeWireGuardConformanceTests : WireGuardControlConformance
{
    private readonly FakeWireGuard _fake = new();

    protected override IWireGuardControl Control => _fake;

    protected override Task<string> CreateDeviceAsync()
    {
        string name = "wg" + Guid.NewGuid().ToString("N")[..8];
        _fake.CreateDevice(name);
        return Task.FromResult(name);
    }
}
