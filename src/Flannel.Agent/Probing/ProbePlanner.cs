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
/// <see cref="FabricProbeOptions.ConfirmDelay"/>. When the regular probes come at least once a second, a due
/// confirmation takes the next regular slot and the ring waits, so the rate never exceeds interval / peers, even when
/// every peer fails at once (the round then takes longer). When they come less often (a small cluster), confirmations
/// have their own stream at one per second. The total rate is bounded by max(peers / interval, the regular rate + 1/s).
/// Not thread-safe.
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

    /// <summary>Time between two confirmation probes when they do not share the regular slots.</summary>
    public static TimeSpan ConfirmationSpacing => s_slowestConfirmationSpacing;

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
        _members.EnsureCapacity(_members.Count + added.Count); // exactly, not by doubling: see FabricProber.SetPeers
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
        if (!_confirmations.TryPeek(out _, out DateTimeOffset due))
        {
            return regular;
        }

        // Sharing the regular slots: the next slot serves a due confirmation or else the ring.
        if (SharesSlots && regular is not null)
        {
            return regular;
        }

        DateTimeOffset confirmation = _lastConfirmation is { } last && last + ConfirmationSpacing > due ? last + ConfirmationSpacing : due;
        return regular is { } r && r < confirmation ? r : confirmation;
    }

    /// <summary>Takes the probe due at <paramref name="now"/>, if any: a due confirmation first, else the next peer in the ring.</summary>
    public bool TryTake(DateTimeOffset now, out string peer, out bool isConfirmation)
    {
        DateTimeOffset slot = _nextRegular ?? now;
        bool regularDue = _ring.Count > 0 && slot <= now;
        bool confirmationAllowed = SharesSlots ? regularDue : _lastConfirmation is not { } last || last + ConfirmationSpacing <= now;
        while (confirmationAllowed && _confirmations.TryPeek(out string? queued, out DateTimeOffset due) && due <= now)
        {
            _confirmations.Dequeue();
            _queued.Remove(queued);
            if (_members.Contains(queued))
            {
                _lastConfirmation = now;
                if (SharesSlots)
                {
                    AdvanceRegular(slot, now); // the confirmation used this slot; the ring waits
                }

                peer = queued;
                isConfirmation = true;
                return true;
            }
        }

        isConfirmation = false;
        if (!regularDue)
        {
            peer = string.Empty;
            return false;
        }

        peer = _ring[_cursor];
        _cursor = (_cursor + 1) % _ring.Count;
        AdvanceRegular(slot, now);
        return true;
    }

    /// <summary>
    /// With one slot per second or more, confirmations take regular slots (the ring waits), so the rate never exceeds
    /// the regular one; with fewer, they have a stream of their own at one per second, so a small cluster confirms
    /// a failure in seconds rather than one spacing later.
    /// </summary>
    private bool SharesSlots => Spacing <= s_slowestConfirmationSpacing;

    private void AdvanceRegular(DateTimeOffset slot, DateTimeOffset now)
    {
        TimeSpan spacing = Spacing;
        DateTimeOffset next = slot + spacing;
        DateTimeOffset earliest = now + (spacing / 2);
        _nextRegular = next > earliest ? next : earliest;
        _lastRegular = now;
    }
}
