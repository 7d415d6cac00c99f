using Flannel.Netlink;
using Flannel.Testing;
using Flannel.Testing.Conformance;
using Flannel.Testing.Namespaces;

namespace Flannel.IntegrationTests.Netlink;

/// <summary>The kernel against the conformance suite, each case in a fresh namespace: what FakeNetlink must match.</summary>
public sealed class RtNetlinkConformanceTests
{
    public static TheoryData<string> Cases => new(NetlinkConformance.CaseNames);

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task RtNetlink_in_a_namespace(string name)
    {
        Privileged.RequireRoot();
        await using NetworkNamespace ns = await NetworkNamespace.CreateAsync("fnc");
        await using RtNetlink netlink = RtNetlink.OpenInNamespace(ns.Name);
        await NetlinkConformance.RunAsync(name, netlink, TestContext.Current.CancellationToken);
    }
}
