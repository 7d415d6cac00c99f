using System.Net;

namespace Flannel.Agent.Probing;

/// <summary>How one echo request ended.</summary>
public enum EchoOutcome
{
    /// <summary>The destination answered.</summary>
    Reply,

    /// <summary>Nothing came back within the timeout (a filter dropped it, or the host is down).</summary>
    Timeout,

    /// <summary>An ICMP error came back: no route, host or network unreachable, a routing loop, an MTU problem.</summary>
    Unreachable,

    /// <summary>A firewall rejected the request (ICMP administratively prohibited).</summary>
    Prohibited,

    /// <summary>The local kernel refused to send it (no route, a source address that is not local, …).</summary>
    SendFailed,
}

/// <summary>The result of one echo request.</summary>
/// <param name="Outcome">How it ended.</param>
/// <param name="RoundTripTime">The round-trip time of a reply; zero otherwise.</param>
/// <param name="Detail">For a failure: what happened, e.g. <c>host unreachable (from 198.18.0.254)</c> or <c>ENETUNREACH</c>.</param>
public readonly record struct EchoResult(EchoOutcome Outcome, TimeSpan RoundTripTime, string? Detail = null)
{
    /// <summary>True for a reply.</summary>
    public bool Succeeded => Outcome == EchoOutcome.Reply;

    /// <summary>A reply after <paramref name="roundTripTime"/>.</summary>
    public static EchoResult Reply(TimeSpan roundTripTime) => new(EchoOutcome.Reply, roundTripTime);

    /// <summary>No answer within the timeout.</summary>
    public static EchoResult TimedOut { get; } = new(EchoOutcome.Timeout, TimeSpan.Zero, "no reply");

    /// <summary>A short text for tables and logs: <c>reply 0.41 ms</c>, <c>no reply</c>, or the failure detail.</summary>
    public override string ToString() => Outcome switch
    {
        EchoOutcome.Reply => $"reply {RoundTripTime.TotalMilliseconds:0.###} ms",
        _ => Detail ?? Outcome.ToString(),
    };
}

/// <summary>
/// Sends ICMP echo requests and reports how each ended. <see cref="IcmpEchoProber"/> is the real one (one raw
/// socket per address family); tests use a fake.
/// </summary>
public interface IEchoProber
{
    /// <summary>
    /// Sends one echo request to <paramref name="destination"/> from <paramref name="source"/> (a local address, or
    /// null for the kernel's choice) and waits for its reply, an ICMP error about it, or <paramref name="timeout"/>.
    /// Never throws for network failures: they are results.
    /// </summary>
    ValueTask<EchoResult> EchoAsync(IPAddress destination, IPAddress? source, TimeSpan timeout, CancellationToken cancellationToken);
}
