using System.Text.Json;
using System.Text.Json.Serialization;
using Flannel.Agent.Probing;
using Flannel.Backends;

namespace Flannel.Agent.Status;

/// <summary>
/// Everything an operator needs to tell why pods on this node cannot reach pods on another: this node's lease,
/// backend, device and store, and per peer its lease, what the kernel holds for it and whether it answers over the
/// overlay and the underlay. Served as JSON on the agent's unix socket (<c>flanneld status -o json</c>) and
/// available in-process through <see cref="IFabricStatus"/>. Addresses are strings in their usual text form.
/// </summary>
public sealed record FabricStatus
{
    /// <summary>The schema version of this document; bumped on incompatible changes.</summary>
    public int ApiVersion { get; init; } = 1;

    /// <summary>When the document was produced.</summary>
    public required DateTimeOffset GeneratedAt { get; init; }

    /// <summary>This node.</summary>
    public required NodeStatus Node { get; init; }

    /// <summary>The probe settings; null when probing is disabled.</summary>
    public ProbeSettings? Probes { get; init; }

    /// <summary>Every remote lease, ordered by subnet key.</summary>
    public required IReadOnlyList<PeerStatus> Peers { get; init; }

    /// <summary>Counts over <see cref="Peers"/>, and the one-line summary.</summary>
    public required FabricSummary Summary { get; init; }

    /// <summary>Writes the status document (the socket's and <c>/status</c>'s JSON: camelCase, enums as strings).</summary>
    public Task WriteJsonAsync(Stream utf8Json, CancellationToken cancellationToken = default) =>
        JsonSerializer.SerializeAsync(utf8Json, this, FabricStatusJsonContext.Default.FabricStatus, cancellationToken);

    /// <summary>Reads a status document written by <see cref="WriteJsonAsync"/>.</summary>
    /// <exception cref="JsonException">The document is not a status document.</exception>
    public static FabricStatus ParseJson(ReadOnlySpan<byte> utf8Json) =>
        JsonSerializer.Deserialize(utf8Json, FabricStatusJsonContext.Default.FabricStatus)
            ?? throw new JsonException("the status document is null");
}

/// <summary>This node as the agent sees it.</summary>
public sealed record NodeStatus
{
    /// <summary>The agent's name (<c>flanneld</c>, or the node name in a multi-agent process).</summary>
    public required string Name { get; init; }

    /// <summary>True once subnet.env is written and while the store's watch works.</summary>
    public bool Ready { get; init; }

    /// <summary>Why the agent is not ready; null when ready.</summary>
    public string? NotReadyReason { get; init; }

    /// <summary>The network (net-conf.json <c>Network</c>), e.g. <c>10.244.0.0/16</c>.</summary>
    public string? Network { get; init; }

    /// <summary>The IPv6 network, when enabled.</summary>
    public string? IPv6Network { get; init; }

    /// <summary>The backend type: <c>vxlan</c>, <c>host-gw</c>, …</summary>
    public string? Backend { get; init; }

    /// <summary>The backend's device, e.g. <c>flannel.1</c>; null for backends without one (host-gw).</summary>
    public string? Device { get; init; }

    /// <summary>The MTU pods get (FLANNEL_MTU).</summary>
    public int? Mtu { get; init; }

    /// <summary>The external interface and its address and MTU.</summary>
    public InterfaceStatus? Interface { get; init; }

    /// <summary>This node's lease; null until acquired.</summary>
    public LeaseStatus? Lease { get; init; }

    /// <summary>The subnet store's health.</summary>
    public required StoreStatus Store { get; init; }
}

/// <summary>The external interface flannel sends through.</summary>
/// <param name="Name">The interface name, e.g. <c>eth0</c>.</param>
/// <param name="Address">Its address flannel uses.</param>
/// <param name="Mtu">Its MTU.</param>
public sealed record InterfaceStatus(string Name, string? Address, int Mtu);

/// <summary>A lease as stored (etcd key or node annotations).</summary>
public sealed record LeaseStatus
{
    /// <summary>The lease key, e.g. <c>10.244.2.0-24</c>.</summary>
    public required string Key { get; init; }

    /// <summary>The IPv4 subnet.</summary>
    public string? Subnet { get; init; }

    /// <summary>The IPv6 subnet.</summary>
    public string? IPv6Subnet { get; init; }

    /// <summary>The public IPv4 address peers send to.</summary>
    public string? PublicIP { get; init; }

    /// <summary>The public IPv6 address.</summary>
    public string? PublicIPv6 { get; init; }

    /// <summary>The lease's backend type.</summary>
    public string? BackendType { get; init; }

    /// <summary>The backend data as published (vxlan: <c>{"VNI":1,"VtepMAC":"…"}</c>); null when absent or not JSON.</summary>
    public JsonElement? BackendData { get; init; }

    /// <summary>When the lease expires; null for a reservation (and in kube mode).</summary>
    public DateTimeOffset? Expiration { get; init; }
}

/// <summary>The subnet store's health.</summary>
/// <param name="Healthy">True when the store reports no problem.</param>
/// <param name="Problem">The problem it reports (a broken watch, a node without podCIDR), or null.</param>
public sealed record StoreStatus(bool Healthy, string? Problem);

/// <summary>How peers are probed.</summary>
/// <param name="IntervalSeconds">Each peer is probed once per interval.</param>
/// <param name="TimeoutMilliseconds">How long a probe waits for its reply.</param>
/// <param name="PeersPerSecond">The resulting probe rate (peers per second; each costs an overlay and an underlay request).</param>
public sealed record ProbeSettings(double IntervalSeconds, double TimeoutMilliseconds, double PeersPerSecond);

/// <summary>Whether a peer is reachable overall, and if not, how it fails.</summary>
public enum PeerHealth
{
    /// <summary>Not probed yet (or probing is off).</summary>
    [JsonStringEnumMemberName("unknown")]
    Unknown,

    /// <summary>Answers over the overlay (pods can reach it).</summary>
    [JsonStringEnumMemberName("reachable")]
    Reachable,

    /// <summary>Unreachable over the overlay while the underlay answers: the signature of a broken overlay
    /// (the vxlan port filtered, an MTU problem, a missing FDB entry).</summary>
    [JsonStringEnumMemberName("overlay-only-failure")]
    OverlayOnlyFailure,

    /// <summary>Unreachable over the overlay and the underlay: the node is down or cut off.</summary>
    [JsonStringEnumMemberName("unreachable")]
    Unreachable,
}

/// <summary>One remote lease, its kernel state and its probe results.</summary>
public sealed record PeerStatus
{
    /// <summary>The lease.</summary>
    public required LeaseStatus Lease { get; init; }

    /// <summary>Overall health (from the two paths).</summary>
    public PeerHealth Health { get; init; }

    /// <summary>What the kernel holds for it.</summary>
    public required PeerKernelStatus Kernel { get; init; }

    /// <summary>ICMP from our overlay address to its overlay address; null when the backend has no overlay device (host-gw) or probing is off.</summary>
    public PathStatus? Overlay { get; init; }

    /// <summary>ICMP from our external address to its public IP; null when probing is off.</summary>
    public PathStatus? Underlay { get; init; }
}

/// <summary>One path to a peer.</summary>
public sealed record PathStatus
{
    /// <summary>Reachable, unreachable, or unknown.</summary>
    public Reachability State { get; init; }

    /// <summary>When the state last changed; null while it never did.</summary>
    public DateTimeOffset? Since { get; init; }

    /// <summary>The path changed state too often recently; it must answer for the hold-down time before it counts as reachable.</summary>
    public bool Flapping { get; init; }

    /// <summary>The probed address.</summary>
    public required string Target { get; init; }

    /// <summary>The source address of the probes; null when the kernel chooses.</summary>
    public string? Source { get; init; }

    /// <summary>The last result, e.g. <c>reply 0.42 ms</c>, <c>no reply</c>, <c>host unreachable (from 198.18.0.254)</c>.</summary>
    public string? Last { get; init; }

    /// <summary>When the last probe ended.</summary>
    public DateTimeOffset? LastProbeAt { get; init; }

    /// <summary>Round-trip times over the window, in milliseconds; null before any reply.</summary>
    public RttStatus? RttMs { get; init; }

    /// <summary>Lost probes over the window, in percent; null before any probe.</summary>
    public double? LossPercent { get; init; }

    /// <summary>Probes in the window.</summary>
    public int Samples { get; init; }

    /// <summary>Probes sent since the peer appeared.</summary>
    public long Sent { get; init; }

    /// <summary>Replies received since the peer appeared.</summary>
    public long Received { get; init; }
}

/// <summary>Round-trip times in milliseconds.</summary>
/// <param name="Last">The last reply's.</param>
/// <param name="Min">The smallest in the window.</param>
/// <param name="Avg">The mean over the window's replies.</param>
/// <param name="Max">The largest in the window.</param>
public sealed record RttStatus(double? Last, double Min, double Avg, double Max);

/// <summary>Counts over the peers.</summary>
public sealed record FabricSummary
{
    /// <summary>Remote leases.</summary>
    public int Peers { get; init; }

    /// <summary>Peers answering over the overlay (or the underlay, for backends without an overlay device).</summary>
    public int Reachable { get; init; }

    /// <summary>Peers unreachable over the overlay whose underlay answers.</summary>
    public int OverlayOnlyFailures { get; init; }

    /// <summary>Peers unreachable over both paths.</summary>
    public int Unreachable { get; init; }

    /// <summary>Peers not probed yet.</summary>
    public int Unknown { get; init; }

    /// <summary>Peers whose kernel objects are missing or drifted.</summary>
    public int KernelProblems { get; init; }

    /// <summary>The line <c>flanneld status</c> prints, e.g. <c>47/48 peers reachable, 1 overlay-only failure</c>.</summary>
    public required string Text { get; init; }

    /// <summary>Computes the counts and the line from <paramref name="peers"/>.</summary>
    public static FabricSummary From(IReadOnlyCollection<PeerStatus> peers)
    {
        ArgumentNullException.ThrowIfNull(peers);
        int reachable = peers.Count(p => p.Health == PeerHealth.Reachable);
        int overlayOnly = peers.Count(p => p.Health == PeerHealth.OverlayOnlyFailure);
        int unreachable = peers.Count(p => p.Health == PeerHealth.Unreachable);
        int unknown = peers.Count(p => p.Health == PeerHealth.Unknown);
        int kernel = peers.Count(p => p.Kernel.State is PeerKernelState.Missing or PeerKernelState.Drifted);
        var parts = new List<string> { $"{reachable}/{peers.Count} peers reachable" };
        if (overlayOnly > 0)
        {
            parts.Add($"{overlayOnly} overlay-only failure{Plural(overlayOnly)}");
        }

        if (unreachable > 0)
        {
            parts.Add($"{unreachable} unreachable over overlay and underlay");
        }

        if (unknown > 0)
        {
            parts.Add($"{unknown} not probed yet");
        }

        if (kernel > 0)
        {
            parts.Add($"{kernel} with missing or drifted kernel objects");
        }

        return new FabricSummary
        {
            Peers = peers.Count,
            Reachable = reachable,
            OverlayOnlyFailures = overlayOnly,
            Unreachable = unreachable,
            Unknown = unknown,
            KernelProblems = kernel,
            Text = string.Join(", ", parts),
        };
    }

    private static string Plural(int count) => count == 1 ? string.Empty : "s";
}

/// <summary>
/// The fabric status of one agent, for embedders that show it their own way (a custom agent's API, a dashboard).
/// <c>flanneld</c> serves the same model on its unix socket.
/// </summary>
public interface IFabricStatus
{
    /// <summary>The agent's name.</summary>
    string Name { get; }

    /// <summary>A consistent snapshot of the status now.</summary>
    FabricStatus GetStatus();
}

/// <summary>Source-generated JSON for the status document (trimming and AOT safe): camelCase, enums as strings.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true,
    WriteIndented = true)]
[JsonSerializable(typeof(FabricStatus))]
[JsonSerializable(typeof(StatusError))]
internal sealed partial class FabricStatusJsonContext : JsonSerializerContext;

/// <summary>The answer to a request the status socket cannot serve.</summary>
/// <param name="Error">What was wrong with the request.</param>
public sealed record StatusError(string Error);
