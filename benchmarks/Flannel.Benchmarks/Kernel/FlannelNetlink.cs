using Flannel.Netlink;

namespace Flannel.Benchmarks.Kernel;

/// <summary>Opens Flannel.NET's <see cref="INetlink"/> inside a benchmark namespace.</summary>
internal static class FlannelNetlink
{
    /// <summary>True when this build contains the rtnetlink implementation.</summary>
    public static bool IsAvailable => false;

    public static ValueTask<INetlink> OpenAsync(BenchmarkNamespace ns, CancellationToken cancellationToken)
    {
        _ = ns;
        _ = cancellationToken;
        throw new NotSupportedException("RtNetlink (the INetlink implementation) is not in this build yet");
    }
}
