using Flannel.Testing.Conformance;

namespace Flannel.Netlink.Tests;

/// <summary>FakeNetlink against the conformance suite (the integration tests run the same cases against the kernel).</summary>
public sealed class FakeNetlinkConformanceTests
{
    public static TheoryData<string> Cases => new(NetlinkConformance.CaseNames);

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task FakeNetlink_behaves_like_the_kernel(string name)
    {
        await using var netlink = new Flannel.Testing.FakeNetlink.FakeNetlink();
        await NetlinkConformance.RunAsync(name, netlink, TestContext.Current.CancellationToken);
    }
}
