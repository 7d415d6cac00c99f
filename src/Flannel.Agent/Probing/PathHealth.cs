using System.Net;
using System.Text.Json.Serialization;

namespace Flannel.Agent.Probing;

/// <summary>Whether a path to a peer works.</summary>
public enum Reachability
{
    /// <summary>Not probed yet, or not enough results to tell.</summary>
    [JsonStringEnumMemberName("unknown")]
    Unknown,

    /// <summary>The peer answers over this path.</summary>
    [JsonStringEnumMemberName("reachable")]
    Reachable,

    /// <summary>The peer stopped answering over this path.</summary>
    [JsonStringEnumMemberName("unreachable")]
    Unreachable,
}

/// <summary>A path's change of state, reported once when it happens.</summary>
/// <param name="From">The state before.</param>
/// <param name="To">The state after.</param>
/// <param name="At">When.</param>
/// <param name="Flapping">The path is flapping (changes are logged once, not each time).</param>
internal readonly record struct PathTransition(Reachability From, Reachability To, DateTimeOffset At, bool Flapping);

/// <summary>
/// One path (overlay or underlay) to one peer: its state machine, and RTT and loss over a window of results.
/// </summary>
/// <remarks>
/// <para>
/// A single lost probe never changes the state. A result that contradicts the state asks for a confirmation probe
/// (<see cref="NeedsConfirmation"/>) and the state changes only after <see cref="FabricProbeOptions.FailureThreshold"/>
/// consecutive failures, or <see cref="FabricProbeOptions.RecoveryThreshold"/> consecutive replies. The first reply
/// of an unknown path makes it reachable at once; an unknown path becomes unreachable after the same number of
/// failures as a reachable one.
/// </para>
/// <para>
/// Flapping suppression: a path that changed state <see cref="FabricProbeOptions.FlapThreshold"/> times within
/// <see cref="FabricProbeOptions.FlapWindow"/> is flapping. It then goes down as before, but comes back up only
/// after answering for <see cref="FabricProbeOptions.HoldDown"/> without a failure, and its changes are flagged so
/// that they are logged once rather than each time. Not thread-safe: the owner serialises access.
/// </para>
/// </remarks>
internal sealed class PathHealth
{
    // Two of these per peer: the window is one float per result (NaN = no reply; an RTT needs no more precision than
    // the microseconds it is reported in), the transition queue exists only once the path has changed state, times
    // are kept as UTC ticks (0 = none) rather than as DateTimeOffset? (24 bytes each, 480 KB at 5,000 peers), the
    // counters are ints (2^31 probes take 4,000 years at one a minute), and the last result is valid once a probe
    // was recorded rather than nullable (8 bytes); of the last result only its outcome and detail are kept, since a
    // reply's RTT is the window's newest entry (16 bytes: 160 KB at 5,000 peers). The target lives here too: a path
    // is made anew when it changes.
    private readonly FabricProbeOptions _options;
    private readonly float[] _rttMilliseconds;
    private Queue<DateTimeOffset>? _transitions;
    private string? _lastDetail;
    private EchoOutcome _lastOutcome;
    private int _count;
    private int _next;
    private int _consecutiveFailures;
    private int _consecutiveReplies;
    private int _sent;
    private int _received;
    private long _replyStreakStartTicks;
    private long _sinceTicks;
    private long _lastProbeTicks;

    /// <param name="options">The prober's options.</param>
    /// <param name="destination">Where the probes go; <see cref="IPAddress.None"/> when the peer has no address for it.</param>
    /// <param name="source">Where they come from; null for the kernel's choice.</param>
    public PathHealth(FabricProbeOptions options, IPAddress destination, IPAddress? source)
    {
        _options = options;
        int window = Math.Max(1, options.Window);
        _rttMilliseconds = new float[window];
        Destination = destination;
        Source = source;
    }

    /// <summary>Where this path's probes go.</summary>
    public IPAddress Destination { get; }

    /// <summary>Where they come from; null for the kernel's choice.</summary>
    public IPAddress? Source { get; }

    /// <summary>True when this path probes <paramref name="destination"/> from <paramref name="source"/>.</summary>
    public bool Targets(IPAddress destination, IPAddress? source) => Destination.Equals(destination) && Equals(Source, source);

    public Reachability State { get; private set; }

    /// <summary>When the state last changed; null while it never did.</summary>
    public DateTimeOffset? Since => FromTicks(_sinceTicks);

    public long Sent => _sent;

    public long Received => _received;

    public EchoResult? LastResult => _lastProbeTicks == 0
        ? null
        : new EchoResult(
            _lastOutcome,
            _lastOutcome == EchoOutcome.Reply ? TimeSpan.FromMilliseconds(_rttMilliseconds[(_next + _rttMilliseconds.Length - 1) % _rttMilliseconds.Length]) : TimeSpan.Zero,
            _lastDetail);

    public DateTimeOffset? LastProbeAt => FromTicks(_lastProbeTicks);

    /// <summary>The last result contradicts the state and the threshold is not reached yet: probe again soon.</summary>
    public bool NeedsConfirmation =>
        (State != Reachability.Unreachable && _consecutiveFailures > 0 && _consecutiveFailures < _options.FailureThreshold)
        || (State == Reachability.Unreachable && _consecutiveReplies > 0 && _consecutiveReplies < _options.RecoveryThreshold);

    /// <summary>True while the path changed state at least FlapThreshold times within FlapWindow.</summary>
    public bool IsFlapping(DateTimeOffset now)
    {
        if (_transitions is null)
        {
            return false;
        }

        while (_transitions.Count > 0 && now - _transitions.Peek() > _options.FlapWindow)
        {
            _transitions.Dequeue();
        }

        return _transitions.Count >= _options.FlapThreshold;
    }

    /// <summary>Records one result; returns the transition when the state changed.</summary>
    public PathTransition? Record(EchoResult result, DateTimeOffset now)
    {
        _sent++;
        _lastOutcome = result.Outcome;
        _lastDetail = result.Detail;
        _lastProbeTicks = now.UtcTicks;
        _rttMilliseconds[_next] = result.Succeeded ? (float)result.RoundTripTime.TotalMilliseconds : float.NaN;
        _next = (_next + 1) % _rttMilliseconds.Length;
        _count = Math.Min(_count + 1, _rttMilliseconds.Length);

        Reachability next = State;
        if (result.Succeeded)
        {
            _received++;
            _consecutiveFailures = 0;
            _consecutiveReplies++;
            if (_replyStreakStartTicks == 0)
            {
                _replyStreakStartTicks = now.UtcTicks;
            }
            if (State == Reachability.Unknown)
            {
                next = Reachability.Reachable;
            }
            else if (State == Reachability.Unreachable && _consecutiveReplies >= _options.RecoveryThreshold
                && (!IsFlapping(now) || now.UtcTicks - _replyStreakStartTicks >= _options.HoldDown.Ticks))
            {
                next = Reachability.Reachable;
            }
        }
        else
        {
            _consecutiveReplies = 0;
            _replyStreakStartTicks = 0;
            _consecutiveFailures++;
            if (State != Reachability.Unreachable && _consecutiveFailures >= _options.FailureThreshold)
            {
                next = Reachability.Unreachable;
            }
        }

        if (next == State)
        {
            return null;
        }

        Reachability from = State;
        State = next;
        _sinceTicks = now.UtcTicks;
        if (from != Reachability.Unknown)
        {
            (_transitions ??= new Queue<DateTimeOffset>()).Enqueue(now);
        }

        return new PathTransition(from, next, now, IsFlapping(now));
    }

    private static DateTimeOffset? FromTicks(long utcTicks) => utcTicks == 0 ? null : new DateTimeOffset(utcTicks, TimeSpan.Zero);

    /// <summary>The current figures.</summary>
    public PathStatistics Statistics()
    {
        int replies = 0;
        double sum = 0;
        double min = double.MaxValue;
        double max = 0;
        for (int i = 0; i < _count; i++)
        {
            if (!float.IsNaN(_rttMilliseconds[i]))
            {
                double rtt = _rttMilliseconds[i];
                replies++;
                sum += rtt;
                min = Math.Min(min, rtt);
                max = Math.Max(max, rtt);
            }
        }

        return new PathStatistics(
            Samples: _count,
            LossPercent: _count == 0 ? null : Math.Round(100.0 * (_count - replies) / _count, 1),
            RttMinMilliseconds: replies == 0 ? null : Math.Round(min, 3),
            RttAvgMilliseconds: replies == 0 ? null : Math.Round(sum / replies, 3),
            RttMaxMilliseconds: replies == 0 ? null : Math.Round(max, 3),
            RttLastMilliseconds: LastResult is { Succeeded: true } last ? Math.Round(last.RoundTripTime.TotalMilliseconds, 3) : null);
    }
}

/// <summary>RTT and loss over a path's window.</summary>
internal readonly record struct PathStatistics(int Samples, double? LossPercent, double? RttMinMilliseconds, double? RttAvgMilliseconds, double? RttMaxMilliseconds, double? RttLastMilliseconds);
