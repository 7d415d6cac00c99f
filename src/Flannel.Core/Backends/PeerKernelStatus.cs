using System.Text.Json.Serialization;

namespace Flannel.Backends;

/// <summary>What the kernel held for a peer at the backend's last diff.</summary>
public enum PeerKernelState
{
    /// <summary>Not diffed yet, or the backend does not report kernel state.</summary>
    [JsonStringEnumMemberName("unknown")]
    Unknown,

    /// <summary>Every object the peer needs (route, neighbour, FDB entry, …) was in the kernel as desired.</summary>
    [JsonStringEnumMemberName("programmed")]
    Programmed,

    /// <summary>Objects the peer needs were missing (re-added, unless the kernel refused).</summary>
    [JsonStringEnumMemberName("missing")]
    Missing,

    /// <summary>Objects existed but differed from the desired state (fixed, unless the kernel refused).</summary>
    [JsonStringEnumMemberName("drifted")]
    Drifted,
}

/// <summary>A peer's kernel state, from the backend's last diff of desired against actual state.</summary>
/// <param name="State">Programmed, missing or drifted.</param>
/// <param name="Detail">What was missing or different and what was done, e.g. <c>1 of 3 objects missing, re-added: route 10.244.2.0/24 …</c>; null when nothing to say.</param>
/// <param name="CheckedAt">When the diff ran.</param>
public sealed record PeerKernelStatus(PeerKernelState State, string? Detail = null, DateTimeOffset? CheckedAt = null)
{
    /// <summary>Nothing known yet.</summary>
    public static PeerKernelStatus Unknown { get; } = new(PeerKernelState.Unknown);
}

/// <summary>
/// Implemented by an <see cref="INetwork"/> that keeps a desired state per peer and diffs it against the kernel (the
/// reconciliation engine does), so the agent's status can say per peer whether its kernel objects are programmed,
/// missing or drifted. Safe to call from any thread.
/// </summary>
public interface IPeerKernelStateSource
{
    /// <summary>The kernel state of the peer whose lease key is <paramref name="leaseKey"/> (<c>10.244.2.0-24</c>).</summary>
    PeerKernelStatus GetPeerKernelStatus(string leaseKey);
}
