namespace Flannel.Benchmarks.Kernel;

/// <summary>
/// iproute2 in batch mode: one <c>bridge -n NS -batch FILE</c> for the FDB entries and one
/// <c>ip -n NS -batch FILE</c> for the ARP entries, routes (and nexthop objects), each a single process
/// reading its commands from a generated file. Dumps are <c>ip route/neigh/nexthop show</c> and
/// <c>bridge fdb show</c>.
/// </summary>
internal sealed class IpBatchTool(bool nexthops) : PeerTool
{
    public override string Name => nexthops ? "ip-batch-nexthop" : "ip-batch";

    public override bool UsesNexthops => nexthops;

    public override string Description => nexthops
        ? "`bridge -n NS -batch fdb.txt` + `ip -n NS -batch ip.txt` with `neigh replace`, `nexthop replace id I via GW dev flannel.1 onlink`, `route replace SUBNET nhid I`; dump with `ip route/neigh/nexthop show`, `bridge fdb show`; delete with `ip -batch`/`bridge -batch`"
        : "`bridge -n NS -batch fdb.txt` + `ip -n NS -batch ip.txt` with `neigh replace GW lladdr MAC dev flannel.1 nud permanent`, `route replace SUBNET via GW dev flannel.1 onlink`; dump with `ip route/neigh show`, `bridge fdb show`; delete with `ip -batch`/`bridge -batch`";

    public override async Task<PhaseTimes> RunAsync(BenchmarkNamespace ns, PeerSet peers, string workDirectory, CancellationToken cancellationToken)
    {
        const string device = BenchmarkNamespace.VxlanName;
        string fdbAdd = Path.Combine(workDirectory, "fdb-add.txt");
        string fdbDelete = Path.Combine(workDirectory, "fdb-del.txt");
        string ipAdd = Path.Combine(workDirectory, "ip-add.txt");
        string ipDelete = Path.Combine(workDirectory, "ip-del.txt");
        await File.WriteAllTextAsync(fdbAdd, peers.ToBridgeBatchAdd(device), cancellationToken);
        await File.WriteAllTextAsync(fdbDelete, peers.ToBridgeBatchDelete(device), cancellationToken);
        await File.WriteAllTextAsync(ipAdd, nexthops ? peers.ToIpBatchNexthopAdd(device) : peers.ToIpBatchClassicAdd(device), cancellationToken);
        await File.WriteAllTextAsync(ipDelete, nexthops ? peers.ToIpBatchNexthopDelete(device) : peers.ToIpBatchClassicDelete(device), cancellationToken);

        TimeSpan program = await TimeAsync(async () =>
        {
            await ns.BridgeAsync(["-batch", fdbAdd], cancellationToken);
            await ns.IpAsync(["-batch", ipAdd], cancellationToken);
        });

        ObjectCounts dumped = default;
        TimeSpan dump = await TimeAsync(async () =>
        {
            string routes = await ns.IpAsync(["-4", "route", "show", "dev", device], cancellationToken);
            string neighbours = await ns.IpAsync(["-4", "neigh", "show", "dev", device], cancellationToken);
            string fdb = await ns.BridgeAsync(["fdb", "show", "dev", device], cancellationToken);
            string nexthopObjects = nexthops ? await ns.IpAsync(["nexthop", "show"], cancellationToken) : string.Empty;
            dumped = new ObjectCounts(
                ProcessRunner.CountLines(routes),
                ProcessRunner.CountLines(neighbours),
                ProcessRunner.CountLines(fdb),
                ProcessRunner.CountLines(nexthopObjects));
        });

        TimeSpan delete = await TimeAsync(async () =>
        {
            await ns.IpAsync(["-batch", ipDelete], cancellationToken);
            await ns.BridgeAsync(["-batch", fdbDelete], cancellationToken);
        });

        return new PhaseTimes(program, dump, delete, dumped);
    }
}
