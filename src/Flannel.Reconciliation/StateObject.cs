namespace Flannel.Reconciliation;

// Design note: the engine diffs desired against observed state and sends the difference. Most of that state is
// rtnetlink objects (KernelObject: routes, neighbours, FDB entries, nexthop objects), which the engine applies itself
// as one netlink batch. Some backends own state that is not an rtnetlink object at all - a WireGuard backend's
// peers live in the wireguard device (generic netlink, or wireguard-go's UAPI socket). Such a backend derives its
// own StateObject type, gives it a StateObjectKind (which fixes where its creates and deletes fall in a plan), and
// supplies an IStateApplier for that kind. Everything else - event path, resync, per-peer withdraw and retry,
// metrics - is the same for every kind.

/// <summary>
/// A kind of state object and its place in a plan. Creates and replaces run in ascending <see cref="CreateOrder"/>,
/// deletes (all before any create) in ascending <see cref="DeleteOrder"/>; objects of one kind keep their order.
/// </summary>
/// <remarks>
/// The rtnetlink kinds (<see cref="KernelObjectKinds"/>) create at 100 (neighbour), 200 (FDB entry), 300 (nexthop
/// object), 400 (route), and delete at 100 (route), 200 (nexthop object), 300 (neighbour), 400 (FDB entry). A backend
/// kind picks its slots: a WireGuard peer creates at 50 (before the routes that use the device) and deletes at 500
/// (after them).
/// </remarks>
/// <param name="Name">The kind's name, used in logs and as the <c>kind</c> metric tag (e.g. <c>route</c>, <c>wireguard-peer</c>).</param>
/// <param name="CreateOrder">Where creates and replaces of this kind fall in a plan.</param>
/// <param name="DeleteOrder">Where deletes of this kind fall in a plan.</param>
public sealed record StateObjectKind(string Name, int CreateOrder, int DeleteOrder)
{
    /// <summary>The name.</summary>
    public override string ToString() => Name;
}

/// <summary>What an object is keyed on: at most one object per key can exist.</summary>
/// <param name="Kind">The object kind.</param>
/// <param name="Identity">A value-equal identity (a record or tuple of the keying fields).</param>
public readonly record struct StateObjectKey(StateObjectKind Kind, object Identity)
{
    /// <summary>The kind and identity, for logs.</summary>
    public override string ToString() => $"{Kind.Name} {Identity}";
}

/// <summary>The part of an object a replace changes.</summary>
public interface IStateContent
{
    /// <summary>
    /// True when an object with <paramref name="observed"/> content already is what this (desired) content asks for.
    /// May be asymmetric: a desired value left unset is satisfied by whatever the kernel chose.
    /// </summary>
    bool IsSatisfiedBy(IStateContent observed);
}

/// <summary>
/// One piece of state a backend wants (desired, with the peer that owns it) or found (observed, no owner): its key,
/// its content and a description. <see cref="KernelObject"/> is the rtnetlink kind the engine applies itself; derive
/// your own type for state that a backend-supplied <see cref="IStateApplier"/> applies.
/// </summary>
public abstract class StateObject
{
    /// <summary>Creates the object.</summary>
    /// <param name="key">What the object is keyed on.</param>
    /// <param name="content">What a replace would change.</param>
    /// <param name="owner">The lease key of the peer the object serves; null for an observed object.</param>
    /// <param name="description">A human-readable form for logs.</param>
    protected StateObject(StateObjectKey key, IStateContent content, string? owner, string description)
        : this(key, owner)
    {
        ArgumentNullException.ThrowIfNull(content);
        ArgumentNullException.ThrowIfNull(description);
        _given = new GivenContentAndDescription(content, description);
    }

    /// <summary>Creates an object whose description is made by <see cref="Describe"/> only when it is asked for.</summary>
    /// <remarks>
    /// The engine keeps what it last programmed for every peer, so a description made up front is kept for every
    /// object of every peer although only errors and repairs ever print one (three strings per peer with vxlan).
    /// </remarks>
    /// <param name="key">What the object is keyed on.</param>
    /// <param name="content">What a replace would change.</param>
    /// <param name="owner">The lease key of the peer the object serves; null for an observed object.</param>
    protected StateObject(StateObjectKey key, IStateContent content, string? owner)
        : this(key, owner)
    {
        ArgumentNullException.ThrowIfNull(content);
        _given = content;
    }

    /// <summary>Creates an object whose content is made by <see cref="CreateContent"/> each time it is asked for.</summary>
    /// <remarks>
    /// For objects whose content follows from what they already hold: the engine keeps every object of every peer,
    /// but compares contents only while it plans a pass, so a content kept per object (three per peer with vxlan)
    /// would be memory held for those moments.
    /// </remarks>
    /// <param name="key">What the object is keyed on.</param>
    /// <param name="owner">The lease key of the peer the object serves; null for an observed object.</param>
    protected StateObject(StateObjectKey key, string? owner)
    {
        ArgumentNullException.ThrowIfNull(key.Kind);
        ArgumentNullException.ThrowIfNull(key.Identity);
        Key = key;
        Owner = owner;
    }

    // What the constructor was given: the content, or the content and the description, or nothing (both made on
    // demand). One field rather than two: the engine keeps every object of every peer, and the rtnetlink objects
    // (15,000 at 5,000 vxlan peers) are given neither, so a second field was 8 bytes each holding null.
    private readonly object? _given;

    /// <summary>What the object is keyed on.</summary>
    public StateObjectKey Key { get; }

    /// <summary>What a replace would change: the content given to the constructor, else <see cref="CreateContent"/>'s.</summary>
    public IStateContent Content => _given switch
    {
        IStateContent content => content,
        GivenContentAndDescription both => both.Content,
        _ => CreateContent(),
    };

    /// <summary>The lease key of the peer this object serves; null for an observed object.</summary>
    public string? Owner { get; }

    /// <summary>Human-readable form for logs: the one given to the constructor, else <see cref="Describe"/>'s.</summary>
    public string Description => _given is GivenContentAndDescription both ? both.Description : Describe();

    /// <summary>The object kind.</summary>
    public StateObjectKind Kind => Key.Kind;

    /// <summary>The description.</summary>
    public override string ToString() => Description;

    /// <summary>Makes the description of an object created without one; by default its key.</summary>
    protected virtual string Describe() => Key.ToString();

    /// <summary>Makes the content of an object created without one; such an object must override this.</summary>
    /// <exception cref="InvalidOperationException">The object was created without content and does not make one.</exception>
    protected virtual IStateContent CreateContent() =>
        throw new InvalidOperationException($"{GetType().Name} {Key} was created without content and does not override CreateContent.");

    private sealed record GivenContentAndDescription(IStateContent Content, string Description);
}

/// <summary>
/// Applies the steps of a plan that fall to one kind of state. The engine calls it with consecutive runs of a plan
/// (so the plan's order across kinds holds) and never concurrently.
/// </summary>
public interface IStateApplier
{
    /// <summary>
    /// Applies <paramref name="steps"/> in order and returns one entry per step: null when the step took effect (a
    /// delete of an object that is already gone counts as done), else the error. One failing step must not prevent
    /// the others. Throw only when nothing could be applied (the engine then retries the whole pass).
    /// </summary>
    ValueTask<IReadOnlyList<Exception?>> ApplyAsync(IReadOnlyList<PlannedStep> steps, CancellationToken cancellationToken);
}
