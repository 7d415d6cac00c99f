using System.Net;
using Flannel.Netlink;

namespace Flannel.Reconciliation;

// Design note: a backend describes the kernel state it wants as a set of KernelObjects, one per route,
// neighbour, FDB entry or nexthop object. The same type describes what a kernel dump returned (the objects
// the backend owns). Diffing two sets is then one algorithm for every backend and every object kind:
// an object is identified by its Key (what the kernel keys it on, so two objects with one key cannot coexist),
// and compared by its Content (what a replace would change). Content comparison is asymmetric: a desired
// route "via 10.244.2.0 dev 7 onlink" is satisfied by a kernel route that also carries a preferred source,
// and a direct route given without a device is satisfied by whatever device the kernel resolved.

/// <summary>The rtnetlink kinds of <see cref="KernelObject"/>, with their places in a plan (see <see cref="StateObjectKind"/>).</summary>
public static class KernelObjectKinds
{
    /// <summary>A permanent neighbour (ARP/NDP) entry: created first, so the kernel never resolves a gateway by ARP.</summary>
    public static StateObjectKind Neighbor { get; } = new("neighbor", CreateOrder: 100, DeleteOrder: 300);

    /// <summary>A vxlan FDB entry: deleted last, since the kernel keys it on the MAC alone (the stale entry goes
    /// before its replacement is written).</summary>
    public static StateObjectKind FdbEntry { get; } = new("fdb", CreateOrder: 200, DeleteOrder: 400);

    /// <summary>A nexthop object: created before and deleted after the routes through it.</summary>
    public static StateObjectKind Nexthop { get; } = new("nexthop", CreateOrder: 300, DeleteOrder: 200);

    /// <summary>A route: created last and deleted first.</summary>
    public static StateObjectKind Route { get; } = new("route", CreateOrder: 400, DeleteOrder: 100);
}

/// <summary>
/// One kernel object: its key, its content, the netlink operations that create and delete it, and the peer
/// (lease key) that owns it when it is desired state.
/// </summary>
public sealed class KernelObject : StateObject
{
    // A network holds one of these per route, neighbour and FDB entry of every peer (15,000 at 5,000 vxlan peers),
    // but sends an operation only for the few a change or repair touches. So an object keeps just its spec and makes
    // its operations and description from it when asked: two operation objects kept per object cost 56 bytes of it,
    // 840 KB at 5,000 vxlan peers.
    // Likewise its content, which follows from the spec (and, for neighbours and FDB entries, the permanence): made
    // when the engine compares contents while planning, not kept (112 bytes a vxlan peer, 560 KB at 5,000).
    private static readonly FdbContent PermanentFdb = new(IsPermanent: true);
    private static readonly FdbContent DynamicFdb = new(IsPermanent: false);

    private readonly bool _permanent; // a neighbour or FDB entry asked to be permanent
    private readonly bool _observed; // a route read from the kernel: described with what the kernel reported

    private KernelObject(StateObjectKind kind, SpecIdentity identity, string? owner, bool permanent = false)
        : base(new StateObjectKey(kind, identity), owner)
    {
        _permanent = permanent;
    }

    private KernelObject(RouteIdentity identity, RouteContent reported)
        : base(new StateObjectKey(KernelObjectKinds.Route, identity), reported, owner: null)
    {
        _observed = true;
    }

    // NeighborSpec, FdbEntrySpec, NexthopSpec or RouteSpec (for an observed route, the one that deletes it). The key's
    // identity holds it and compares only its keying fields, so the spec is kept once and no boxed tuple of those
    // fields sits beside it (16-24 bytes an object, and 8 for a field of its own: 320 KB at 5,000 vxlan peers).
    private object Spec => ((SpecIdentity)Key.Identity).Spec;

    /// <summary>The destination of a route; null for the other kinds.</summary>
    internal System.Net.IPNetwork? RouteDestination => Key.Identity is RouteIdentity route ? route.Route.Destination : null;

    /// <summary>The operation that creates or overwrites the object (made on each call).</summary>
    public NetlinkOperation Replace => Spec switch
    {
        NeighborSpec neighbor => new NeighborReplace(neighbor),
        FdbEntrySpec entry => new FdbEntryReplace(entry),
        NexthopSpec nexthop => new NexthopReplace(nexthop),
        var spec => new RouteReplace((RouteSpec)spec),
    };

    /// <summary>The operation that deletes the object (made on each call).</summary>
    public NetlinkOperation Delete => Spec switch
    {
        NeighborSpec neighbor => new NeighborDelete(neighbor),
        FdbEntrySpec entry => new FdbEntryDelete(entry),
        NexthopSpec nexthop => new NexthopDelete(nexthop.Id),
        var spec => new RouteDelete((RouteSpec)spec),
    };

    /// <summary>The operation a step with <paramref name="action"/> sends: the delete for <see cref="RepairAction.Deleted"/>, else the replace.</summary>
    public NetlinkOperation OperationFor(RepairAction action) => action == RepairAction.Deleted ? Delete : Replace;

    /// <summary>A permanent neighbour <c>IP lladdr MAC dev LINK</c>.</summary>
    public static KernelObject ForNeighbor(NeighborSpec spec, bool isPermanent, string? owner)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new KernelObject(KernelObjectKinds.Neighbor, new NeighborIdentity(spec), owner, isPermanent);
    }

    /// <summary>A <c>self permanent</c> FDB entry <c>MAC dev LINK dst IP</c>.</summary>
    public static KernelObject ForFdbEntry(FdbEntrySpec spec, bool isPermanent, string? owner)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new KernelObject(KernelObjectKinds.FdbEntry, new FdbEntryIdentity(spec), owner, isPermanent);
    }

    /// <summary>A nexthop object <c>id N via GW dev LINK [onlink]</c>.</summary>
    public static KernelObject ForNexthop(NexthopSpec spec, string? owner)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new KernelObject(KernelObjectKinds.Nexthop, new NexthopIdentity(spec), owner);
    }

    /// <summary>A route, keyed like the kernel keys it (table and destination; flannel never sets a metric or TOS).</summary>
    public static KernelObject ForRoute(RouteSpec spec, string? owner)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new KernelObject(KernelObjectKinds.Route, new RouteIdentity(spec), owner);
    }

    /// <summary>An observed route, with the delete operation that removes exactly it.</summary>
    public static KernelObject ForObservedRoute(RouteInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        var delete = new RouteSpec
        {
            Destination = info.Destination,
            Gateway = info.NexthopId is null ? info.Gateway : null,
            LinkIndex = info.NexthopId is null ? info.LinkIndex : null,
            Table = info.Table,
            Protocol = info.Protocol,
            Scope = info.Scope,
            Type = info.Type,
            NexthopId = info.NexthopId,
        };
        return new KernelObject(new RouteIdentity(delete), new RouteContent(info.Gateway, info.LinkIndex, info.OnLink, info.NexthopId));
    }

    /// <inheritdoc />
    protected override IStateContent CreateContent() => Spec switch
    {
        NeighborSpec neighbor => new NeighborContent(neighbor.LinkLayerAddress, _permanent),
        FdbEntrySpec => _permanent ? PermanentFdb : DynamicFdb,
        NexthopSpec nexthop => new NexthopContent(nexthop.Gateway, nexthop.LinkIndex, nexthop.OnLink),
        var spec => RouteContentOf((RouteSpec)spec),
    };

    private static RouteContent RouteContentOf(RouteSpec route) => new(route.Gateway, route.LinkIndex, route.OnLink, route.NexthopId);

    /// <inheritdoc />
    protected override string Describe() => Spec switch
    {
        NeighborSpec neighbor => Describe(neighbor),
        FdbEntrySpec entry => Describe(entry),
        NexthopSpec nexthop => Describe(nexthop),
        RouteSpec route when _observed => DescribeRoute(route, (RouteContent)Content) + $" proto {route.Protocol}",
        var spec => DescribeRoute((RouteSpec)spec),
    };

    private static string Describe(NeighborSpec n) => $"neigh {n.Address} lladdr {n.LinkLayerAddress} dev #{n.LinkIndex}";

    private static string Describe(FdbEntrySpec e) => $"fdb {e.MacAddress} dev #{e.LinkIndex} dst {e.Destination}";

    private static string Describe(NexthopSpec n) => $"nexthop id {n.Id} via {n.Gateway} dev #{n.LinkIndex}{(n.OnLink ? " onlink" : string.Empty)}";

    /// <summary>A route as it is sent; an observed route with what the kernel reported (its content), since the
    /// operation that deletes it leaves the gateway and device out when it goes through a nexthop object.</summary>
    private static string DescribeRoute(RouteSpec route, RouteContent? reported = null) =>
        reported is null
            ? DescribeRoute(route.Destination, route.Gateway, route.LinkIndex, route.OnLink, route.NexthopId, route.Table)
            : DescribeRoute(route.Destination, reported.Gateway, reported.LinkIndex, reported.OnLink, reported.NexthopId, route.Table);

    private static string DescribeRoute(IPNetwork destination, IPAddress? gateway, int? link, bool onLink, uint? nexthopId, uint table)
    {
        string text = nexthopId is { } id ? $"{destination} nhid {id}" : $"{destination}";
        if (nexthopId is null && gateway is not null)
        {
            text += $" via {gateway}";
        }

        if (nexthopId is null && link is { } index)
        {
            text += $" dev #{index}";
        }

        if (onLink && nexthopId is null)
        {
            text += " onlink";
        }

        if (table != RouteDefaults.MainTable)
        {
            text += $" table {table}";
        }

        return text;
    }

    /// <summary>A key identity that holds its object's spec and compares, hashes and prints only the fields the
    /// kernel keys the object on (printed like the tuple of those fields).</summary>
    private abstract class SpecIdentity(object spec)
    {
        public object Spec { get; } = spec;
    }

    /// <summary>A neighbour is keyed on (link, address).</summary>
    private sealed class NeighborIdentity(NeighborSpec neighbor) : SpecIdentity(neighbor)
    {
        public override bool Equals(object? obj) =>
            obj is NeighborIdentity other && other.Neighbor.LinkIndex == Neighbor.LinkIndex && Equals(other.Neighbor.Address, Neighbor.Address);

        public override int GetHashCode() => HashCode.Combine(Neighbor.LinkIndex, Neighbor.Address);

        public override string ToString() => $"({Neighbor.LinkIndex}, {Neighbor.Address})";

        private NeighborSpec Neighbor => (NeighborSpec)Spec;
    }

    /// <summary>An FDB entry is keyed on (link, MAC, destination).</summary>
    private sealed class FdbEntryIdentity(FdbEntrySpec entry) : SpecIdentity(entry)
    {
        public override bool Equals(object? obj) =>
            obj is FdbEntryIdentity other && other.Entry.LinkIndex == Entry.LinkIndex && other.Entry.MacAddress == Entry.MacAddress
            && Equals(other.Entry.Destination, Entry.Destination);

        public override int GetHashCode() => HashCode.Combine(Entry.LinkIndex, Entry.MacAddress, Entry.Destination);

        public override string ToString() => $"({Entry.LinkIndex}, {Entry.MacAddress}, {Entry.Destination})";

        private FdbEntrySpec Entry => (FdbEntrySpec)Spec;
    }

    /// <summary>A nexthop object is keyed on its id.</summary>
    private sealed class NexthopIdentity(NexthopSpec nexthop) : SpecIdentity(nexthop)
    {
        public override bool Equals(object? obj) => obj is NexthopIdentity other && other.Id == Id;

        public override int GetHashCode() => Id.GetHashCode();

        public override string ToString() => Id.ToString(System.Globalization.CultureInfo.InvariantCulture);

        private uint Id => ((NexthopSpec)Spec).Id;
    }

    /// <summary>A route is keyed on (table, destination).</summary>
    private sealed class RouteIdentity(RouteSpec route) : SpecIdentity(route)
    {
        public RouteSpec Route => (RouteSpec)Spec;

        public override bool Equals(object? obj) =>
            obj is RouteIdentity other && other.Route.Table == Route.Table && other.Route.Destination.Equals(Route.Destination);

        public override int GetHashCode() => HashCode.Combine(Route.Table, Route.Destination);

        public override string ToString() => $"({Route.Table}, {Route.Destination})";
    }
}

/// <summary>Neighbour content: the MAC, and that the entry is permanent.</summary>
public sealed record NeighborContent(MacAddress? LinkLayerAddress, bool IsPermanent) : IStateContent
{
    /// <inheritdoc />
    public bool IsSatisfiedBy(IStateContent observed) =>
        observed is NeighborContent other && other.LinkLayerAddress == LinkLayerAddress && other.IsPermanent == IsPermanent;
}

/// <summary>FDB content: the key already holds MAC and destination, so only permanence is left.</summary>
public sealed record FdbContent(bool IsPermanent) : IStateContent
{
    /// <inheritdoc />
    public bool IsSatisfiedBy(IStateContent observed) => observed is FdbContent other && other.IsPermanent == IsPermanent;
}

/// <summary>Nexthop content.</summary>
public sealed record NexthopContent(IPAddress? Gateway, int? LinkIndex, bool OnLink) : IStateContent
{
    /// <inheritdoc />
    public bool IsSatisfiedBy(IStateContent observed) =>
        observed is NexthopContent other && Equals(other.Gateway, Gateway) && other.LinkIndex == LinkIndex && other.OnLink == OnLink;
}

/// <summary>Route content. A route through a nexthop object is compared by id alone (the kernel reports the
/// object's gateway and device alongside); an unset device or onlink flag is not compared.</summary>
public sealed record RouteContent(IPAddress? Gateway, int? LinkIndex, bool OnLink, uint? NexthopId) : IStateContent
{
    /// <inheritdoc />
    public bool IsSatisfiedBy(IStateContent observed)
    {
        if (observed is not RouteContent other)
        {
            return false;
        }

        if (NexthopId is not null || other.NexthopId is not null)
        {
            return NexthopId == other.NexthopId;
        }

        return Equals(Gateway, other.Gateway)
            && (LinkIndex is null || LinkIndex == other.LinkIndex)
            && (!OnLink || other.OnLink);
    }
}
