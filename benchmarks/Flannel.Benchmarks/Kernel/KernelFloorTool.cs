namespace Flannel.Benchmarks.Kernel;

/// <summary>
/// The kernel floor: every request pre-encoded before the clock starts, sent many per sendmsg without
/// NLM_F_ACK, so the time is the kernel's own work plus the system calls.
/// </summary>
internal sealed class KernelFloorTool(bool nexthops) : PeerTool
{
    public static bool IsAvailable => false;

    public override string Name => nexthops ? "floor-nexthop" : "floor";

    public override bool UsesNexthops => nexthops;

    public override string Description => "pre-encoded requests, no acks";

    public override Task<PhaseTimes> RunAsync(BenchmarkNamespace ns, PeerSet peers, string workDirectory, CancellationToken cancellationToken)
        => throw new NotSupportedException("the netlink encoder is not in this build yet");
}
