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

/// <summary>The kinds of kernel object a backend programs, in the order a peer's objects are created.</summary>
public enum KernelObjectKind
{
    /// <summary>A permanent neighbour (ARP/NDP) entry.</summary>
    Neighbor = 0,

    /// <summary>A vxlan FDB entry.</summary>
    FdbEntry = 1,

    /// <summary>A nexthop object.</summary>
    Nexthop = 2,

    /// <summary>A route.</summary>
    Route = 3,
}

/// <summary>What the kernel keys an object on: at most one object per key can exist.</summary>
/// <param name="Kind">The object kind.</param>
/// <param name="Identity">A value-equal identity (a record or tuple of the keying fields).</param>
public readonly record struct KernelObjectKey(KernelObjectKind Kind, object Identity)
{
    /// <summary>The kind and identity, for logs.</summary>
    public override string ToString() => $"{Kind} {Identity}";
}

/// <summary>
/// One kernel object: its key, its content, the netlink operations that create and delete it, and the peer
/// (lease key) that owns it when it is desired state.
/// </summary>
public sealed class KernelObject
{
    private KernelObject(KernelObjectKey key, IKernelObjectContent content, NetlinkOperation replace, NetlinkOperation delete, string? owner, string description)
    {
        Key = key;
        Content = content;
        Replace = replace;
        Delete = delete;
        Owner = owner;
        Description = description;
    }

    /// <summary>What the kernel keys the object on.</summary>
    public KernelObjectKey Key { get; }

    /// <summary>What a replace would change.</summary>
    public IKernelObjectContent Content { get; }

    /// <summary>The operation that creates or overwrites the object.</summary>
    public NetlinkOperation Replace { get; }

    /// <summary>The operation that deletes the object.</summary>
    public NetlinkOperation Delete { get; }

    /// <summary>The lease key of the peer this object serves; null for an observed object.</summary>
    public string? Owner { get; }

    /// <summary>Human-readable form, in <c>ip</c> syntax, for logs.</summary>
    public string Description { get; }

    /// <summary>The object kind.</summary>
    public KernelObjectKind Kind => Key.Kind;

    /// <summary>The description, in <c>ip</c> syntax.</summary>
    public override string ToString() => Description;

    /// <summary>A permanent neighbour <c>IP lladdr MAC dev LINK</c>.</summary>
    public static KernelObject ForNeighbor(NeighborSpec spec, bool isPermanent, string? owner)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new KernelObject(
            new KernelObjectKey(KernelObjectKind.Neighbor, (spec.LinkIndex, spec.Address)),
            new NeighborContent(spec.LinkLayerAddress, isPermanent),
            new NeighborReplace(spec),
            new NeighborDelete(spec),
            owner,
            $"neigh {spec.Address} lladdr {spec.LinkLayerAddress} dev #{spec.LinkIndex}");
    }

    /// <summary>A <c>self permanent</c> FDB entry <c>MAC dev LINK dst IP</c>.</summary>
    public static KernelObject ForFdbEntry(FdbEntrySpec spec, bool isPermanent, string? owner)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new KernelObject(
            new KernelObjectKey(KernelObjectKind.FdbEntry, (spec.LinkIndex, spec.MacAddress, spec.Destination)),
            new FdbContent(isPermanent),
            new FdbEntryReplace(spec),
            new FdbEntryDelete(spec),
            owner,
            $"fdb {spec.MacAddress} dev #{spec.LinkIndex} dst {spec.Destination}");
    }

    /// <summary>A nexthop object <c>id N via GW dev LINK [onlink]</c>.</summary>
    public static KernelObject ForNexthop(NexthopSpec spec, string? owner)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new KernelObject(
            new KernelObjectKey(KernelObjectKind.Nexthop, spec.Id),
            new NexthopContent(spec.Gateway, spec.LinkIndex, spec.OnLink),
            new NexthopReplace(spec),
            new NexthopDelete(spec.Id),
            owner,
            $"nexthop id {spec.Id} via {spec.Gateway} dev #{spec.LinkIndex}{(spec.OnLink ? " onlink" : string.Empty)}");
    }

    /// <summary>A route, keyed like the kernel keys it (table and destination; flannel never sets a metric or TOS).</summary>
    public static KernelObject ForRoute(RouteSpec spec, string? owner)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new KernelObject(
            new KernelObjectKey(KernelObjectKind.Route, (spec.Table, spec.Destination)),
            new RouteContent(spec.Gateway, spec.LinkIndex, spec.OnLink, spec.NexthopId),
            new RouteReplace(spec),
            new RouteDelete(spec),
            owner,
            DescribeRoute(spec.Destination, spec.Gateway, spec.LinkIndex, spec.OnLink, spec.NexthopId, spec.Table));
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
        return new KernelObject(
            new KernelObjectKey(KernelObjectKind.Route, (info.Table, info.Destination)),
            new RouteContent(info.Gateway, info.LinkIndex, info.OnLink, info.NexthopId),
            new RouteReplace(delete),
            new RouteDelete(delete),
            owner: null,
            DescribeRoute(info.Destination, info.Gateway, info.LinkIndex, info.OnLink, info.NexthopId, info.Table) + $" proto {info.Protocol}");
    }

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
}

/// <summary>The part of an object a replace changes.</summary>
public interface IKernelObjectContent
{
    /// <summary>True when an object with <paramref name="observed"/> content already is what this content asks for.</summary>
    bool IsSatisfiedBy(IKernelObjectContent observed);
}

/// <summary>Neighbour content: the MAC, and that the entry is permanent.</summary>
public sealed record NeighborContent(MacAddress? LinkLayerAddress, bool IsPermanent) : IKernelObjectContent
{
    /// <inheritdoc />
    public bool IsSatisfiedBy(IKernelObjectContent observed) =>
        observed is NeighborContent other && other.LinkLayerAddress == LinkLayerAddress && other.IsPermanent == IsPermanent;
}

/// <summary>FDB content: the key already holds MAC and destination, so only permanence is left.</summary>
public sealed record FdbContent(bool IsPermanent) : IKernelObjectContent
{
    /// <inheritdoc />
    public bool IsSatisfiedBy(IKernelObjectContent observed) => observed is FdbContent other && other.IsPermanent == IsPermanent;
}

/// <summary>Nexthop content.</summary>
public sealed record NexthopContent(IPAddress? Gateway, int? LinkIndex, bool OnLink) : IKernelObjectContent
{
    /// <inheritdoc />
    public bool IsSatisfiedBy(IKernelObjectContent observed) =>
        observed is NexthopContent other && Equals(other.Gateway, Gateway) && other.LinkIndex == LinkIndex && other.OnLink == OnLink;
}

/// <summary>Route content. A route through a nexthop object is compared by id alone (the kernel reports the
/// object's gateway and device alongside); an unset device or onlink flag is not compared.</summary>
public sealed record RouteContent(IPAddress? Gateway, int? LinkIndex, bool OnLink, uint? NexthopId) : IKernelObjectContent
{
    /// <inheritdoc />
    public bool IsSatisfiedBy(IKernelObjectContent observed)
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
