namespace Flannel.Agent.Probing;

/// <summary>
/// When to probe which peer: the pacing of <see cref="FabricProber"/>, kept free of clocks and tasks so that its
/// spread and its rate bound are tested directly.
/// </summary>
/// <remarks>
/// <para>
/// Peers sit in a ring visited in order, one every <see cref="Spacing"/> = interval / peers (never faster than
/// <see cref="FabricProbeOptions.MaxPeersPerSecond"/>), so each peer is probed once per interval and 5,000 peers at
/// 60 s cost 83 peers/s, evenly, never a burst. A new peer joins the ring at the cursor, so it is probed next;
/// a removed peer leaves it. When the caller is late (a busy machine), the planner does not catch up: the next
/// slot is at least half a spacing away.
/// </para>
/// <para>
/// Confirmation probes (after a result that contradicts a path's state) have their own queue, due after
/// <see cref="FabricProbeOptions.ConfirmDelay"/>, paced at <see cref="ConfirmationSpacing"/>: at least one per
/// second, or as fast as the regular probes when those are faster. The total rate is therefore bounded by twice
/// the regular rate plus one per second, even when every peer fails at once. Not thread-safe.
/// </para>
/// </remarks>
internal sealed class ProbePlanner
{
    private static readonly TimeSpan s_slowestConfirmationSpacing = TimeSpan.FromSeconds(1);
    private readonly FabricProbeOptions _options;
    private readonly List<string> _ring = [];
    private readonly HashSet<string> _members = new(StringComparer.Ordinal);
    private readonly PriorityQueue<string, DateTimeOffset> _confirmations = new();
    private readonly HashSet<string> _queued = new(StringComparer.Ordinal);
    private int _cursor;
    private DateTimeOffset? _nextRegular;
    private DateTimeOffset? _lastRegular;
    private DateTimeOffset? _lastConfirmation;

    public ProbePlanner(FabricProbeOptions options) => _options = options;

    public int Count => _ring.Count;

    /// <summary>Time between two regular probes: interval / peers, bounded below by the maximum rate.</summary>
    public TimeSpan Spacing
    {
        get
        {
            TimeSpan even = _ring.Count == 0 ? _options.Interval : _options.Interval / _ring.Count;
            TimeSpan fastest = TimeSpan.FromSeconds(1 / Math.Max(_options.MaxPeersPerSecond, 0.001));
            return even > fastest ? even : fastest;
        }
    }

    /// <summary>Time between two confirmation probes.</summary>
    public TimeSpan ConfirmationSpacing => Spacing < s_slowestConfirmationSpacing ? Spacing : s_slowestConfirmationSpacing;

    /// <summary>Makes <paramref name="peers"/> the ring: keeps the order of those already in it, inserts new ones at the cursor.</summary>
    public void SetPeers(IEnumerable<string> peers)
    {
        var wanted = new HashSet<string>(peers, StringComparer.Ordinal);
        for (int i = _ring.Count - 1; i >= 0; i--)
        {
            if (!wanted.Contains(_ring[i]))
            {
                _members.Remove(_ring[i]);
                _ring.RemoveAt(i);
                if (i < _cursor)
                {
                    _cursor--;
                }
            }
        }

        if (_cursor >= _ring.Count)
        {
            _cursor = 0;
        }

        var added = wanted.Where(p => !_members.Contains(p)).Order(StringComparer.Ordinal).ToList();
        _ring.InsertRange(_cursor, added);
        _members.UnionWith(added);

        // More peers mean a shorter spacing: the slot planned with the old one must not hold the new peers back.
        if (_lastRegular is { } last && _nextRegular > last + Spacing)
        {
            _nextRegular = last + Spacing;
        }
    }

    /// <summary>Asks for <paramref name="peer"/> to be probed again at <paramref name="due"/> (once, however often asked).</summary>
    public void Confirm(string peer, DateTimeOffset due)
    {
        if (_members.Contains(peer) && _queued.Add(peer))
        {
            _confirmations.Enqueue(peer, due);
        }
    }

    /// <summary>When the next probe is due; null when there is nothing to probe.</summary>
    public DateTimeOffset? NextDue(DateTimeOffset now)
    {
        DateTimeOffset? regular = _ring.Count == 0 ? null : _nextRegular ?? now;
        DateTimeOffset? confirmation = null;
        if (_confirmations.TryPeek(out _, out DateTimeOffset due))
        {
            confirmation = _lastConfirmation is { } last && last + ConfirmationSpacing > due ? last + ConfirmationSpacing : due;
        }

        return (regular, confirmation) switch
        {
            (null, null) => null,
            ({ } r, null) => r,
            (null, { } c) => c,
            ({ } r, { } c) => r < c ? r : c,
        };
    }

    /// <summary>Takes the probe due at <paramref name="now"/>, if any: a confirmation first, else the next peer in the ring.</summary>
    public bool TryTake(DateTimeOffset now, out string peer, out bool isConfirmation)
    {
        while (_confirmations.TryPeek(out string? queued, out DateTimeOffset due)
            && due <= now
            && (_lastConfirmation is not { } last || last + ConfirmationSpacing <= now))
        {
            _confirmations.Dequeue();
            _queued.Remove(queued);
            if (_members.Contains(queued))
            {
                _lastConfirmation = now;
                peer = queued;
                isConfirmation = true;
                return true;
            }
        }

        isConfirmation = false;
        DateTimeOffset slot = _nextRegular ?? now;
        if (_ring.Count == 0 || slot > now)
        {
            peer = string.Empty;
            return false;
        }

        peer = _ring[_cursor];
        _cursor = (_cursor + 1) % _ring.Count;
        TimeSpan spacing = Spacing;
        DateTimeOffset next = slot + spacing;
        DateTimeOffset earliest = now + (spacing / 2);
        _nextRegular = next > earliest ? next : earliest;
        _lastRegular = now;
        return true;
    }
}
