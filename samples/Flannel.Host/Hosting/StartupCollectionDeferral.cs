using System.Runtime;
using Microsoft.Extensions.Logging;

namespace Flannel.Host.Hosting;

/// <summary>
/// flanneld defers garbage collection from its start until the backend has programmed the first lease snapshot
/// (<see cref="Flannel.Agent.FlannelAgent.SnapshotProgrammed"/>), within a budget of <see cref="Budget"/> bytes.
/// </summary>
/// <remarks>
/// <para>
/// Start-up allocates, within a fraction of a second, almost everything flanneld is about to keep: the store's list
/// of every lease, the admitted leases, and the backend's plan for every peer. A collection the allocation budget
/// triggers in the middle of that finds nearly all of it alive and copies it into an older generation; it frees
/// little. At 5,000 etcd leases the native flanneld allocated 38 MiB before programming began and paused 66 ms for
/// two such collections (a gen0 of 40 ms while it read the list, then a full one), both on the way to subnet.env
/// and to the first route. Deferring them, in one run of 4 rounds each with default flags: subnet.env 116-149 ms
/// after exec instead of 174-225, converged in 816-979 ms instead of 875-1165 (median 856 against 1085), steady RSS
/// unchanged, and a start-up peak of 78-82 MiB instead of 64-66 (README).
/// </para>
/// <para>
/// The deferral is a no-GC region (<see cref="GC.TryStartNoGCRegion(long)"/>). It ends in whichever way comes first:
/// the backend's own collection after a large start-up pass (<c>Flannel.Reconciliation.CollectAfterLargePasses</c>),
/// which then collects the start-up garbage once; the budget running out, which collects as if there had been no
/// region (from roughly 10,000 peers); or <see cref="End"/>, when the snapshot is programmed or flanneld stops.
/// Memory the region reserves but start-up does not touch is committed, not resident. When the runtime cannot grant
/// the budget (a small container memory limit), flanneld starts without the deferral.
/// </para>
/// <para>
/// This is the host's decision, not the agent's: a region stops collection for the whole process, which only the
/// program that owns the process may do. An embedder gets the same signal from
/// <see cref="Flannel.Agent.FlannelAgent.SnapshotProgrammed"/>.
/// </para>
/// </remarks>
internal sealed partial class StartupCollectionDeferral : IDisposable
{
    /// <summary>
    /// The start-up allocation the region covers: the host's own start (about 17 MiB, most of it before the store
    /// answers) and about 4.4 KiB per peer (39 MiB for 5,000 peers in all, measured with the native flanneld).
    /// </summary>
    internal const long Budget = 64L << 20;

    private int _ended;

    private readonly long _budget;

    private StartupCollectionDeferral(long budget, string? refusal)
    {
        _budget = budget;
        Refusal = refusal;
    }

    /// <summary>True when the no-GC region was granted.</summary>
    public bool Begun => Refusal is null;

    /// <summary>Why the runtime refused the region; null when it was granted.</summary>
    public string? Refusal { get; }

    /// <summary>Starts deferring collections for up to <paramref name="budget"/> bytes of allocation.</summary>
    public static StartupCollectionDeferral Begin(long budget = Budget)
    {
        try
        {
            return GC.TryStartNoGCRegion(budget)
                ? new StartupCollectionDeferral(budget, refusal: null)
                : new StartupCollectionDeferral(budget, refusal: "the runtime could not commit the budget");
        }
        catch (Exception ex) when (ex is ArgumentOutOfRangeException or InvalidOperationException)
        {
            // More than the runtime can reserve (a heap hard limit), or a region is already in progress.
            return new StartupCollectionDeferral(budget, refusal: ex.Message);
        }
    }

    /// <summary>
    /// Ends the region if it is still in force. Returns false when it never began, was ended before, or a
    /// collection already ended it (the budget ran out, or someone collected).
    /// </summary>
    public bool End()
    {
        if (!Begun || Interlocked.Exchange(ref _ended, 1) == 1 || GCSettings.LatencyMode != GCLatencyMode.NoGCRegion)
        {
            return false;
        }

        try
        {
            GC.EndNoGCRegion();
            return true;
        }
        catch (InvalidOperationException)
        {
            // A collection ended the region between the check and the call.
            return false;
        }
    }

    /// <summary>Ends the region when <paramref name="snapshotProgrammed"/> completes, however it completes.</summary>
    public void EndWhen(Task snapshotProgrammed, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(snapshotProgrammed);
        ArgumentNullException.ThrowIfNull(logger);
        if (!Begun)
        {
            LogRefused(logger, Refusal!);
            return;
        }

        LogDeferring(logger, _budget >> 20);
        snapshotProgrammed.ContinueWith(
            (_, state) => ((StartupCollectionDeferral)state!).EndAfterSnapshot(logger),
            this,
            CancellationToken.None,
            TaskContinuationOptions.None,
            TaskScheduler.Default);
    }

    /// <summary>
    /// Ends the region if it is still in force. No collection follows: from 256 peers the backend's own start-up
    /// collection has ended the region already, and below that a forced collection here left a flanneld with
    /// 3 peers 2.5 MiB more anonymous memory than the next collection the budget triggers (measured: gen0, full
    /// and compacting collections alike).
    /// </summary>
    private void EndAfterSnapshot(ILogger logger)
    {
        if (End() && logger.IsEnabled(LogLevel.Debug))
        {
            long allocatedMiB = GC.GetTotalAllocatedBytes() >> 20;
            LogEnded(logger, allocatedMiB);
        }
    }

    /// <inheritdoc />
    public void Dispose() => End();

    [LoggerMessage(Level = LogLevel.Debug, Message = "start-up: garbage collection deferred until the lease snapshot is programmed (budget {BudgetMiB} MiB)")]
    private static partial void LogDeferring(ILogger logger, long budgetMiB);

    [LoggerMessage(Level = LogLevel.Debug, Message = "start-up: garbage collection not deferred: {Reason}")]
    private static partial void LogRefused(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "start-up: the lease snapshot is programmed; garbage collection resumes ({AllocatedMiB} MiB allocated since exec)")]
    private static partial void LogEnded(ILogger logger, long allocatedMiB);
}
