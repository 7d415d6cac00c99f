using Flannel.Netlink;

namespace Flannel.Benchmarks.Kernel;

/// <summary>Opens Flannel.NET's <see cref="INetlink"/> (the real <see cref="RtNetlink"/>) inside a benchmark namespace.</summary>
internal static class FlannelNetlink
{
    /// <summary>True when this build contains the rtnetlink implementation.</summary>
    public static bool IsAvailable => true;

    public static ValueTask<INetlink> OpenAsync(BenchmarkNamespace ns, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult<INetlink>(RtNetlink.OpenInNamespace(ns.Path));
    }
}
