using System.Text.Json;
using Flannel.Testing;
using Flannel.Testing.Namespaces;
using Flannel.Agent.Traffic;

namespace Flannel.IntegrationTests.Netlink;

/// <summary>The shared namespace fixture other kernel tests build on.</summary>
public sealed class NetworkNamespaceTests
{
    [Fact]
    public async Task A_namespace_is_unique_isolated_has_loopback_up_and_is_deleted_on_dispose()
    {
        Privileged.RequireRoot();
        NetworkNamespace first = await NetworkNamespace.CreateAsync();
        string path;
        await using (NetworkNamespace second = await NetworkNamespace.CreateAsync())
        {
            Assert.Matches("^fnt-[0-9a-f]{8}$", first.Name);
            Assert.NotEqual(first.Name, second.Name);
            Assert.True(File.Exists(first.Path));

            JsonElement links = await first.IpJsonAsync("ip", "link", "show");
            JsonElement lo = Assert.Single(links.EnumerateArray());
            Assert.Equal("lo", lo.GetProperty("ifname").GetString());
            Assert.Contains("UP", lo.GetProperty("flags").EnumerateArray().Select(f => f.GetString()));

            await first.RunCheckedAsync("ip", "link", "add", "br-only-here", "type", "bridge");
            Assert.NotEqual(0, (await second.RunAsync("ip", "link", "show", "br-only-here")).ExitCode);
            path = second.Path;
        }

        Assert.False(File.Exists(path));
        await first.DisposeAsync();
        await first.DisposeAsync(); // idempotent
        Assert.False(File.Exists(first.Path));
    }

    [Fact]
    public async Task Arguments_are_passed_verbatim_and_failures_carry_stderr()
    {
        Privileged.RequireRoot();
        await using NetworkNamespace ns = await NetworkNamespace.CreateAsync();

        ProcessResult echo = await ns.RunAsync("echo", "a b; rm -rf /nonexistent $(id)");
        Assert.Equal(0, echo.ExitCode);
        Assert.Equal("a b; rm -rf /nonexistent $(id)\n", echo.StandardOutput);

        InvalidOperationException e = await Assert.ThrowsAsync<InvalidOperationException>(() => ns.RunCheckedAsync("ip", "link", "set", "nope0", "up"));
        Assert.Contains("nope0", e.Message, StringComparison.Ordinal);
        Assert.Contains(ns.Name, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connect_builds_a_working_veth_underlay_between_two_namespaces()
    {
        Privileged.RequireRoot();
        await using NetworkNamespace a = await NetworkNamespace.CreateAsync();
        await using NetworkNamespace b = await NetworkNamespace.CreateAsync();

        await a.ConnectAsync(b, "veth0", "198.18.0.1/24", "veth1", "198.18.0.2/24");

        ProcessResult ping = await a.RunAsync("ping", "-c", "1", "-W", "5", "198.18.0.2");
        Assert.True(ping.ExitCode == 0, ping.StandardOutput + ping.StandardError);
        Assert.Equal(1500, (await b.IpJsonAsync("ip", "link", "show", "veth1"))[0].GetProperty("mtu").GetInt32());
    }
}
