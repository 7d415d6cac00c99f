using System.Net;
using System.Net.Sockets;

namespace Flannel.Networking;

/// <summary>
/// The equally sized subnets between a first and a last subnet address, inclusive (flannel's walk from
/// SubnetMin to SubnetMax). A value type with a struct enumerator: iterating costs no allocation unless an
/// <see cref="IPNetwork"/> is materialised through <see cref="Enumerator.Current"/>.
/// </summary>
/// <remarks>Create it with <see cref="IPNetworkMath.EnumerateSubnets"/>.</remarks>
public readonly struct SubnetRange : IEquatable<SubnetRange>
{
    private readonly UInt128 _first;
    private readonly UInt128 _last;

    internal SubnetRange(UInt128 first, UInt128 last, int prefixLength, AddressFamily family)
    {
        _first = first;
        _last = last;
        PrefixLength = prefixLength;
        Family = family;
    }

    /// <summary>The prefix length of every subnet in the range.</summary>
    public int PrefixLength { get; }

    /// <summary>The address family of the range.</summary>
    public AddressFamily Family { get; }

    /// <summary>True when the range holds no subnet (the first address is after the last).</summary>
    public bool IsEmpty => _first > _last;

    /// <summary>The number of subnets in the range, saturating at <see cref="UInt128.MaxValue"/>.</summary>
    public UInt128 Count
    {
        get
        {
            if (IsEmpty)
            {
                return UInt128.Zero;
            }

            int hostBits = IPNetworkMath.BitLength(Family) - PrefixLength;
            UInt128 span = _last - _first;
            UInt128 steps = hostBits >= 128 ? UInt128.Zero : span >> hostBits;
            return steps == UInt128.MaxValue ? steps : steps + 1;
        }
    }

    /// <summary>Returns the struct enumerator.</summary>
    public Enumerator GetEnumerator() => new(_first, _last, PrefixLength, Family);

    /// <inheritdoc />
    public bool Equals(SubnetRange other) =>
        _first == other._first && _last == other._last && PrefixLength == other.PrefixLength && Family == other.Family;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is SubnetRange other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(_first, _last, PrefixLength, Family);

    /// <summary>Equality.</summary>
    public static bool operator ==(SubnetRange left, SubnetRange right) => left.Equals(right);

    /// <summary>Inequality.</summary>
    public static bool operator !=(SubnetRange left, SubnetRange right) => !left.Equals(right);

    /// <summary>Walks the range in ascending order.</summary>
    public struct Enumerator
    {
        private readonly UInt128 _last;
        private readonly UInt128 _step;
        private readonly int _prefixLength;
        private readonly AddressFamily _family;
        private UInt128 _next;
        private bool _done;

        internal Enumerator(UInt128 first, UInt128 last, int prefixLength, AddressFamily family)
        {
            _last = last;
            _prefixLength = prefixLength;
            _family = family;
            _step = IPNetworkMath.Size(family, prefixLength);
            _next = first;
            _done = first > last;
            CurrentValue = default;
        }

        /// <summary>The current subnet's first address as an integer (no allocation).</summary>
        public UInt128 CurrentValue { get; private set; }

        /// <summary>The current subnet.</summary>
        public readonly IPNetwork Current => new(IPNetworkMath.FromUInt128(CurrentValue, _family), _prefixLength);

        /// <summary>Advances to the next subnet.</summary>
        public bool MoveNext()
        {
            if (_done)
            {
                return false;
            }

            CurrentValue = _next;
            UInt128 following = _next + _step;

            // Stop after the last subnet, and also when the step runs off the end of the address space.
            if (following > _last || following <= _next || (_family == AddressFamily.InterNetwork && following > uint.MaxValue))
            {
                _done = true;
            }

            _next = following;
            return true;
        }

        /// <summary>
        /// Skips ahead: the next <see cref="MoveNext"/> yields the first subnet at or after <paramref name="value"/>
        /// (rounded up to a subnet boundary). Used to jump over an allocated block in one step.
        /// </summary>
        public void SkipTo(UInt128 value)
        {
            if (_done || value <= _next)
            {
                return;
            }

            UInt128 mask = _step - 1;
            UInt128 aligned = (value + mask) & ~mask;
            if (aligned < value || aligned > _last)
            {
                _done = true;
                return;
            }

            _next = aligned;
        }
    }
}
