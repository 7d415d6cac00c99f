using System.Runtime;
using Flannel.Host.Hosting;
using Microsoft.Extensions.Logging.Abstractions;

namespace Flannel.Host.Tests.Hosting;

/// <summary>
/// The no-GC region is process-wide: these tests run alone (a collection or a region from a test running alongside
/// would end or refuse theirs).
/// </summary>
[Collection(nameof(NoGcRegionCollection))]
public sealed class StartupCollectionDeferralTests
{
    private const long SmallBudget = 16L << 20;

    [Fact]
    public void Begins_a_no_gc_region_and_ends_it_once()
    {
        using StartupCollectionDeferral deferral = BeginRegion();
        Assert.Null(deferral.Refusal);
        int collections = GC.CollectionCount(0);
        _ = Allocate(1 << 20);
        Assert.Equal(collections, GC.CollectionCount(0));

        Assert.True(deferral.End());
        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
        Assert.False(deferral.End());
    }

    [Fact]
    public void A_collection_that_already_ended_the_region_is_not_an_error()
    {
        // The backend's own collection after a large start-up pass ends the region before the host does.
        using StartupCollectionDeferral deferral = BeginRegion();
        GC.Collect();
        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);

        Assert.False(deferral.End());
    }

    [Fact]
    public void Allocating_past_the_budget_collects_and_ends_the_region()
    {
        using StartupCollectionDeferral deferral = BeginRegion();
        int collections = GC.CollectionCount(0);
        for (int i = 0; i < 64 && GCSettings.LatencyMode == GCLatencyMode.NoGCRegion; i++)
        {
            _ = Allocate(1 << 20);
        }

        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
        Assert.True(GC.CollectionCount(0) > collections);
        Assert.False(deferral.End());
    }

    [Fact]
    public void A_second_region_is_refused_with_the_runtime_reason()
    {
        using StartupCollectionDeferral first = BeginRegion();

        // The runtime refuses a region while one is in progress, and the refused call ends that one too: flanneld
        // begins once; whoever ends it afterwards finds nothing to end, and that is no error.
        using StartupCollectionDeferral second = StartupCollectionDeferral.Begin(SmallBudget);
        Assert.False(second.Begun);
        Assert.Contains("NoGCRegion", second.Refusal, StringComparison.Ordinal);
        Assert.False(second.End());
        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
        Assert.False(first.End());
    }

    [Theory]
    [InlineData("programmed")]
    [InlineData("stopped")]
    [InlineData("failed")]
    public async Task Ends_when_the_snapshot_is_programmed_or_the_agent_stops_or_fails(string outcome)
    {
        using StartupCollectionDeferral deferral = BeginRegion();
        var snapshotProgrammed = new TaskCompletionSource();
        deferral.EndWhen(snapshotProgrammed.Task, NullLogger.Instance);
        Assert.Equal(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);

        _ = outcome switch
        {
            "programmed" => snapshotProgrammed.TrySetResult(),
            "stopped" => snapshotProgrammed.TrySetCanceled(CancellationToken.None),
            _ => snapshotProgrammed.TrySetException(new InvalidOperationException("the agent failed")),
        };
        for (int i = 0; i < 200 && GCSettings.LatencyMode == GCLatencyMode.NoGCRegion; i++)
        {
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }

        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
        Assert.False(deferral.End());
    }

    private static StartupCollectionDeferral BeginRegion()
    {
        StartupCollectionDeferral deferral = StartupCollectionDeferral.Begin(SmallBudget);
        Assert.True(deferral.Begun, deferral.Refusal);
        Assert.Equal(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
        return deferral;
    }

    private static byte[] Allocate(int bytes)
    {
        var array = new byte[bytes];
        array[^1] = 1;
        return array;
    }
}

[CollectionDefinition(nameof(NoGcRegionCollection), DisableParallelization = true)]
public sealed class NoGcRegionCollection;
