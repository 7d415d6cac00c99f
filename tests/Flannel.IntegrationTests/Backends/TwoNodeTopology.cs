using System.Diagnostics;
using System.Security.Cryptography;

namespace Flannel.Backends.Kernel.Tests;

/// <summary>
/// Two "nodes" for kernel tests: network namespaces A and B, each with an <c>eth0</c> veth whose peer is
/// enslaved to a bridge in a third namespace, on the underlay 198.18.0.0/24 (A = .1, B = .2). Each node also
/// has a <c>pods</c> bridge (like cni0) holding the first address of its pod subnet (10.244.1.1/24, 10.244.2.1/24).
/// Names are unique per fixture (<c>fnt-&lt;8 hex&gt;-a</c>); everything is deleted on dispose, also when the
/// test failed. Nothing is created in the root namespace.
/// </summary>
internal sealed class TwoNodeTopology : IAsyncDisposable
{
    private readonly List<string> _namespaces = [];

    private TwoNodeTopology(string id)
    {
        NodeA = $"fnt-{id}-a";
        NodeB = $"fnt-{id}-b";
        Switch = $"fnt-{id}-sw";
    }

    public string NodeA { get; }

    public string NodeB { get; }

    public string Switch { get; }

    public static async Task<TwoNodeTopology> CreateAsync()
    {
        var topology = new TwoNodeTopology(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        try
        {
            await topology.BuildAsync();
            return topology;
        }
        catch
        {
            await topology.DisposeAsync();
            throw;
        }
    }

    private async Task BuildAsync()
    {
        foreach (string ns in new[] { Switch, NodeA, NodeB })
        {
            await IpAsync("netns", "add", ns);
            _namespaces.Add(ns);
            await IpAsync("-n", ns, "link", "set", "lo", "up");
        }

        await IpAsync("-n", Switch, "link", "add", "br0", "type", "bridge");
        await IpAsync("-n", Switch, "link", "set", "br0", "up");
        foreach ((string node, string port, int host) in new[] { (NodeA, "pa", 1), (NodeB, "pb", 2) })
        {
            await IpAsync("-n", node, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", Switch);
            await IpAsync("-n", Switch, "link", "set", port, "master", "br0", "up");
            await IpAsync("-n", node, "addr", "add", $"198.18.0.{host}/24", "dev", "eth0");
            await IpAsync("-n", node, "link", "set", "eth0", "up");
            await IpAsync("-n", node, "link", "add", "pods", "type", "bridge");
            await IpAsync("-n", node, "addr", "add", $"10.244.{host}.1/24", "dev", "pods");
            await IpAsync("-n", node, "link", "set", "pods", "up");
        }
    }

    /// <summary>Pings <paramref name="target"/> from <paramref name="source"/> inside <paramref name="ns"/> (one packet, 2 s).</summary>
    public static async Task<(int ExitCode, string Output)> PingAsync(string ns, string source, string target)
    {
        return await RunAsync("ip", ["netns", "exec", ns, "ping", "-c1", "-W2", "-I", source, target], check: false);
    }

    /// <summary>Pings until one succeeds (at most three tries: the first packet may race the last kernel update).</summary>
    public static async Task<bool> PingsAsync(string ns, string source, string target)
    {
        for (int attempt = 0; attempt < 3; attempt++)
        {
            if ((await PingAsync(ns, source, target)).ExitCode == 0)
            {
                return true;
            }
        }

        return false;
    }

    public static Task<(int ExitCode, string Output)> IpAsync(params string[] args) => RunAsync("ip", args, check: true);

    public static Task<(int ExitCode, string Output)> BridgeAsync(params string[] args) => RunAsync("bridge", args, check: true);

    public static async Task<(int ExitCode, string Output)> RunAsync(string program, string[] args, bool check)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        string output = await stdout + await stderr;
        if (check && process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed ({process.ExitCode}): {output}");
        }

        return (process.ExitCode, output);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (string ns in Enumerable.Reverse(_namespaces))
        {
            await RunAsync("ip", ["netns", "del", ns], check: false);
        }

        _namespaces.Clear();
    }
}
