using System.Diagnostics;

namespace Flannel.Benchmarks.Kernel;

/// <summary>
/// One way of programming flannel's per-peer objects (ARP entry, FDB entry, route, and in the nexthop form
/// a nexthop object) into a namespace, dumping them and deleting them again.
/// </summary>
internal abstract class PeerTool
{
    /// <summary>Short name used by <c>--tools</c> and in the tables.</summary>
    public abstract string Name { get; }

    /// <summary>What exactly is run, for the notes under the table.</summary>
    public abstract string Description { get; }

    /// <summary>True when the tool programs nexthop objects and routes by <c>nhid</c>.</summary>
    public virtual bool UsesNexthops => false;

    /// <summary>Kernel objects per peer: ARP, FDB, route, plus a nexthop object in the nexthop form.</summary>
    public int ObjectsPerPeer => UsesNexthops ? 4 : 3;

    /// <summary>
    /// Runs the three phases in <paramref name="ns"/>, which is fresh and holds only the vxlan layout.
    /// Preparation (input files, spec objects, encoded buffers) happens before the program phase's clock
    /// starts. When the call returns, every object it created must be gone again.
    /// </summary>
    public abstract Task<PhaseTimes> RunAsync(BenchmarkNamespace ns, PeerSet peers, string workDirectory, CancellationToken cancellationToken);

    /// <summary>
    /// True for tools running in this .NET process: their code is JIT-compiled, so they get untimed warm-up
    /// runs first (see <see cref="KernelHarness"/>). External programs (ip, bridge, Go) are compiled ahead of time.
    /// </summary>
    public virtual bool NeedsWarmUp => false;

    protected static async Task<TimeSpan> TimeAsync(Func<Task> phase)
    {
        long start = Stopwatch.GetTimestamp();
        await phase();
        return Stopwatch.GetElapsedTime(start);
    }
}

/// <summary>What one run measured.</summary>
/// <param name="Program">Time to program every peer.</param>
/// <param name="Dump">Time to dump routes, neighbours, FDB entries (and nexthops); null when not measured.</param>
/// <param name="Delete">Time to delete every object again.</param>
/// <param name="Dumped">What the tool's own dump returned.</param>
/// <param name="Programmed">
/// What iproute2 counted right after the program phase (untimed), when the tool can pause between phases;
/// an independent check that does not trust the tool's own dump.
/// </param>
internal sealed record PhaseTimes(TimeSpan Program, TimeSpan? Dump, TimeSpan Delete, ObjectCounts Dumped, ObjectCounts? Programmed = null);
