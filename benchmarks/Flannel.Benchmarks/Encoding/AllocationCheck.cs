using System.Globalization;

namespace Flannel.Benchmarks.Encoding;

/// <summary>
/// An exact, thread-local allocation count for each encoder benchmark: after a warm-up, runs it a million
/// times and reads <see cref="GC.GetAllocatedBytesForCurrentThread"/> before and after. BenchmarkDotNet's
/// in-process allocation column is process-wide, so a background thread (the tiering JIT, a timer) that
/// allocates during the measurement shows up as a few bytes per operation; this count cannot be fooled
/// that way.
/// </summary>
/// <example><c>dotnet run -c Release --project benchmarks/Flannel.Benchmarks -- allocations</c></example>
internal static class AllocationCheck
{
    private const int Operations = 1_000_000;

    public static int Run()
    {
        var messages = new EncodeMessageBenchmarks();
        var batch = new EncodeBatchBenchmarks { Peers = 512 };
        batch.Setup();
        var wireGuard = new EncodeWireGuardBenchmarks { Peers = 512 };
        wireGuard.Setup();
        (string Name, Func<int> Operation)[] cases =
        [
            (nameof(messages.RouteReplace), messages.RouteReplace),
            (nameof(messages.NeighborReplace), messages.NeighborReplace),
            (nameof(messages.FdbReplace), messages.FdbReplace),
            (nameof(messages.VxlanLinkCreate), messages.VxlanLinkCreate),
            (nameof(messages.NexthopReplace), messages.NexthopReplace),
            (nameof(messages.RouteReplaceViaNexthop), messages.RouteReplaceViaNexthop),
            ("PeersIntoSpan(512)", batch.PeersIntoSpan),
            ("PeersIntoBufferWriter(512)", batch.PeersIntoBufferWriter),
            ("PeersThroughOperations(512)", batch.PeersThroughOperations),
            ("WgSetOnePeer", wireGuard.SetOnePeer),
            ("WgSetDevice(512)", wireGuard.SetDevice),
        ];

        int failures = 0;
        foreach ((string name, Func<int> operation) in cases)
        {
            int operations = name.Contains("512", StringComparison.Ordinal) ? Operations / 1000 : Operations;
            for (int i = 0; i < operations; i++)
            {
                operation(); // warm-up: let tiered compilation settle before counting
            }

            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < operations; i++)
            {
                operation();
            }

            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            failures += allocated == 0 ? 0 : 1;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name,-28} {operations,9:N0} operations  {allocated,8:N0} bytes allocated on this thread  ({(double)allocated / operations:F4} B/op)"));
        }

        return failures == 0 ? 0 : 1;
    }
}
