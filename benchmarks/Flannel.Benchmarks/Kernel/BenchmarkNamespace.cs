using System.Security.Cryptography;

namespace Flannel.Benchmarks.Kernel;

/// <summary>
/// A fresh, uniquely named network namespace (<c>fnb-&lt;8 hex&gt;</c>) laid out like a flannel vxlan host:
/// a veth pair carrying the underlay address 198.18.0.1/15 and a vxlan device <c>flannel.1</c>
/// (<c>vxlan id 1 local 198.18.0.1 dev veth0 dstport 8472 nolearning</c>, MTU 1450), both up.
/// Disposing deletes the namespace, and with it every object a tool programmed.
/// </summary>
/// <remarks>
/// The layout is built with iproute2: it is the harness's fixture, not something being measured, and the
/// same commands work whatever state the Flannel.NET netlink stack is in.
/// </remarks>
internal sealed class BenchmarkNamespace : IAsyncDisposable
{
    public const string VxlanName = "flannel.1";
    public const string UnderlayName = "veth0";
    public const string UnderlayAddress = "198.18.0.1";

    private BenchmarkNamespace(string name) => Name = name;

    public string Name { get; }

    /// <summary>The path setns(2) takes to enter the namespace.</summary>
    public string Path => "/var/run/netns/" + Name;

    public static async Task<BenchmarkNamespace> CreateAsync(CancellationToken cancellationToken)
    {
        string name = "fnb-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        await ProcessRunner.RunAsync("ip", ["netns", "add", name], cancellationToken);
        var ns = new BenchmarkNamespace(name);
        try
        {
            await ns.IpAsync(["link", "add", UnderlayName, "type", "veth", "peer", "name", "veth1"], cancellationToken);
            await ns.IpAsync(["addr", "add", UnderlayAddress + "/15", "dev", UnderlayName], cancellationToken);
            await ns.IpAsync(["link", "set", UnderlayName, "up"], cancellationToken);
            await ns.IpAsync(["link", "set", "veth1", "up"], cancellationToken);
            await ns.IpAsync(
                ["link", "add", VxlanName, "mtu", "1450", "type", "vxlan", "id", "1", "local", UnderlayAddress,
                 "dev", UnderlayName, "dstport", "8472", "nolearning"],
                cancellationToken);
            await ns.IpAsync(["link", "set", VxlanName, "up"], cancellationToken);
            return ns;
        }
        catch
        {
            await ns.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs <c>ip -n NAME ARGS</c>.</summary>
    public Task<string> IpAsync(IEnumerable<string> arguments, CancellationToken cancellationToken)
        => ProcessRunner.RunAsync("ip", ["-n", Name, .. arguments], cancellationToken);

    /// <summary>Runs <c>bridge -n NAME ARGS</c>.</summary>
    public Task<string> BridgeAsync(IEnumerable<string> arguments, CancellationToken cancellationToken)
        => ProcessRunner.RunAsync("bridge", ["-n", Name, .. arguments], cancellationToken);

    /// <summary>
    /// Counts what is left on <c>flannel.1</c> (outside any timing): IPv4 routes, IPv4 neighbours, FDB
    /// entries and nexthop objects.
    /// </summary>
    public async Task<ObjectCounts> CountObjectsAsync(CancellationToken cancellationToken)
    {
        int routes = ProcessRunner.CountLines(await IpAsync(["-4", "route", "show", "dev", VxlanName], cancellationToken));
        int neighbours = ProcessRunner.CountLines(await IpAsync(["-4", "neigh", "show", "dev", VxlanName], cancellationToken));
        int fdb = ProcessRunner.CountLines(await BridgeAsync(["fdb", "show", "dev", VxlanName], cancellationToken));
        int nexthops = ProcessRunner.CountLines(await IpAsync(["nexthop", "show"], cancellationToken));
        return new ObjectCounts(routes, neighbours, fdb, nexthops);
    }

    public async ValueTask DisposeAsync()
    {
        // Never cancelled: the namespace must go even when the run was interrupted.
        try
        {
            await ProcessRunner.RunAsync("ip", ["netns", "del", Name], CancellationToken.None);
        }
        catch (InvalidOperationException e)
        {
            await Console.Error.WriteLineAsync($"warning: could not delete namespace {Name}: {e.Message}");
        }
    }
}

/// <summary>Objects found on the vxlan device.</summary>
internal readonly record struct ObjectCounts(int Routes, int Neighbours, int FdbEntries, int Nexthops)
{
    public override string ToString() => $"{Routes} routes, {Neighbours} neighbours, {FdbEntries} FDB entries, {Nexthops} nexthops";
}
