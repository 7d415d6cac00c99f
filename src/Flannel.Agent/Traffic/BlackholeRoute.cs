using System.Globalization;
using Flannel.Netlink;

namespace Flannel.Agent.Traffic;

/// <summary>
/// How the <c>--ip-blackhole-route</c> route is written: <c>blackhole &lt;lease subnet&gt; proto 70 metric 4294967295</c>.
/// </summary>
/// <remarks>
/// The kernel keys a route by prefix, metric and table. flannel adds its blackhole at metric 0, the metric of the
/// route the kernel creates for <c>cni0</c>'s address: if <c>cni0</c> is configured first, the add fails with
/// "File exists" (fine), but if the blackhole is there first, the kernel appends <c>cni0</c>'s route behind it and the
/// blackhole wins, so local pods are unreachable; replacing instead of adding removes <c>cni0</c>'s route. At the
/// lowest priority there is, the blackhole never shares a key with another route: any other route for the prefix
/// (IPv4 metric 0, IPv6 metric 256) wins while it exists, and the blackhole only catches the subnet's traffic when
/// nothing else does, whatever the order. Protocol 70 marks it as ours.
/// </remarks>
internal static class BlackholeRoute
{
    /// <summary>The route's metric (priority): the largest, i.e. the lowest priority.</summary>
    public const uint Metric = uint.MaxValue;

    internal static string MetricText { get; } = Metric.ToString(CultureInfo.InvariantCulture);

    internal static string ProtocolText { get; } = RouteDefaults.ProtocolFlannel.ToString(CultureInfo.InvariantCulture);

    /// <summary>The metric of one line of <c>ip route show</c> (0 when the line has none).</summary>
    internal static uint MetricOf(string line)
    {
        string[] words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        int at = Array.IndexOf(words, "metric");
        return at >= 0 && at + 1 < words.Length && uint.TryParse(words[at + 1], NumberStyles.None, CultureInfo.InvariantCulture, out uint metric)
            ? metric
            : 0;
    }
}
