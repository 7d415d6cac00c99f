using System.Net;
using System.Text.Json;
using Flannel.Agent.Probing;
using Flannel.Testing;
using Flannel.Testing.Namespaces;

namespace Flannel.IntegrationTests.Probing;

/// <summary>
/// The raw ICMP prober against the real kernel: two namespaces joined by a veth (198.18.0.1 ↔ 198.18.0.2), the
/// prober's socket opened inside the first. Each test deletes its namespaces, even when it fails.
/// </summary>
public sealed class IcmpEchoProberKernelTests
{
    private static readonly IPAddress Host = IPAddress.Parse("198.18.0.1");
    private static readonly IPAddress Peer = IPAddress.Parse("198.18.0.2");
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_peer_answers_and_the_round_trip_time_is_measured()
    {
        Privileged.RequireRoot();
        await using var host = await NetworkNamespace.CreateAsync("fpr");
        await using var peer = await NetworkNamespace.CreateAsync("fpr");
        await host.ConnectAsync(peer, "veth0", "198.18.0.1/24", "veth1", "198.18.0.2/24");
        using var prober = new IcmpEchoProber(host.Name);

        EchoResult result = await prober.EchoAsync(Peer, Host, Timeout, Ct);
        Assert.Equal(EchoOutcome.Reply, result.Outcome);
        Assert.True(result.RoundTripTime > TimeSpan.Zero && result.RoundTripTime < Timeout, result.ToString());

        // Many at once, on the one socket: every reply finds its request.
        EchoResult[] many = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => prober.EchoAsync(Peer, Host, Timeout, Ct).AsTask()));
        Assert.All(many, r => Assert.Equal(EchoOutcome.Reply, r.Outcome));
        Assert.Equal(0, prober.Outstanding);
    }

    [Fact]
    public async Task The_request_leaves_from_the_chosen_source_address()
    {
        Privileged.RequireRoot();
        await using var host = await NetworkNamespace.CreateAsync("fpr");
        await using var peer = await NetworkNamespace.CreateAsync("fpr");
        await host.ConnectAsync(peer, "veth0", "198.18.0.1/24", "veth1", "198.18.0.2/24");
        // A second local address, as the flannel device's 10.244.1.0/32 is, and a way back to it.
        await host.RunCheckedAsync("ip", "addr", "add", "10.244.1.0/32", "dev", "lo");
        await peer.RunCheckedAsync("ip", "route", "add", "10.244.1.0/32", "via", "198.18.0.1");
        await peer.RunCheckedAsync("nft", "add", "table", "inet", "probe");
        await peer.RunCheckedAsync("nft", "add", "chain", "inet", "probe", "in", "{ type filter hook input priority 0 ; }");
        await peer.RunCheckedAsync("nft", "add", "rule", "inet", "probe", "in", "ip", "saddr", "10.244.1.0", "icmp", "type", "echo-request", "counter");
        using var prober = new IcmpEchoProber(host.Name);

        EchoResult result = await prober.EchoAsync(Peer, IPAddress.Parse("10.244.1.0"), Timeout, Ct);

        Assert.Equal(EchoOutcome.Reply, result.Outcome);
        JsonElement ruleset = JsonDocument.Parse(await peer.RunCheckedAsync("nft", "-j", "list", "table", "inet", "probe")).RootElement;
        long packets = ruleset.GetProperty("nftables").EnumerateArray()
            .Where(e => e.TryGetProperty("rule", out _))
            .SelectMany(e => e.GetProperty("rule").GetProperty("expr").EnumerateArray())
            .Where(x => x.TryGetProperty("counter", out _))
            .Sum(x => x.GetProperty("counter").GetProperty("packets").GetInt64());
        Assert.Equal(1, packets);
    }

    [Fact]
    public async Task A_dropping_firewall_times_out_and_a_rejecting_one_is_reported_as_prohibited()
    {
        Privileged.RequireRoot();
        await using var host = await NetworkNamespace.CreateAsync("fpr");
        await using var peer = await NetworkNamespace.CreateAsync("fpr");
        await host.ConnectAsync(peer, "veth0", "198.18.0.1/24", "veth1", "198.18.0.2/24");
        await peer.RunCheckedAsync("nft", "add", "table", "inet", "probe");
        await peer.RunCheckedAsync("nft", "add", "chain", "inet", "probe", "in", "{ type filter hook input priority 0 ; }");
        await peer.RunCheckedAsync("nft", "add", "rule", "inet", "probe", "in", "icmp", "type", "echo-request", "drop");
        using var prober = new IcmpEchoProber(host.Name);

        EchoResult dropped = await prober.EchoAsync(Peer, Host, TimeSpan.FromMilliseconds(500), Ct);
        Assert.Equal(EchoOutcome.Timeout, dropped.Outcome);

        await peer.RunCheckedAsync("nft", "flush", "chain", "inet", "probe", "in");
        await peer.RunCheckedAsync("nft", "add", "rule", "inet", "probe", "in", "icmp", "type", "echo-request", "reject", "with", "icmp", "type", "admin-prohibited");
        EchoResult rejected = await prober.EchoAsync(Peer, Host, Timeout, Ct);
        Assert.Equal(EchoOutcome.Prohibited, rejected.Outcome);
        Assert.Equal("administratively prohibited (from 198.18.0.2)", rejected.Detail);
        Assert.Equal(0, prober.Outstanding);
    }

    [Fact]
    public async Task Local_refusals_are_results_that_name_the_errno()
    {
        Privileged.RequireRoot();
        await using var host = await NetworkNamespace.CreateAsync("fpr");
        await using var peer = await NetworkNamespace.CreateAsync("fpr");
        await host.ConnectAsync(peer, "veth0", "198.18.0.1/24", "veth1", "198.18.0.2/24");
        using var prober = new IcmpEchoProber(host.Name);

        EchoResult noRoute = await prober.EchoAsync(IPAddress.Parse("203.0.113.1"), null, Timeout, Ct);
        Assert.Equal(EchoOutcome.SendFailed, noRoute.Outcome);
        Assert.StartsWith("ENETUNREACH", noRoute.Detail, StringComparison.Ordinal);

        EchoResult foreignSource = await prober.EchoAsync(Peer, IPAddress.Parse("10.9.9.9"), Timeout, Ct);
        Assert.Equal(EchoOutcome.SendFailed, foreignSource.Outcome);
        // A source that is not local finds no route (the kernel looks up the output device by source address).
        Assert.StartsWith("ENETUNREACH", foreignSource.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task IPv6_peers_answer_on_the_IPv6_socket()
    {
        Privileged.RequireRoot();
        await using var host = await NetworkNamespace.CreateAsync("fpr");
        await using var peer = await NetworkNamespace.CreateAsync("fpr");
        await host.ConnectAsync(peer, "veth0", "198.18.0.1/24", "veth1", "198.18.0.2/24");
        await host.RunCheckedAsync("ip", "-6", "addr", "add", "fd00:198:18::1/64", "dev", "veth0", "nodad");
        await peer.RunCheckedAsync("ip", "-6", "addr", "add", "fd00:198:18::2/64", "dev", "veth1", "nodad");
        using var prober = new IcmpEchoProber(host.Name);

        EchoResult result = await prober.EchoAsync(IPAddress.Parse("fd00:198:18::2"), IPAddress.Parse("fd00:198:18::1"), Timeout, Ct);
        Assert.Equal(EchoOutcome.Reply, result.Outcome);
    }
}
