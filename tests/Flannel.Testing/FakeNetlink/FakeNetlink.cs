using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Flannel.Netlink;
using Flannel.Networking;

namespace Flannel.Testing.FakeNetlink;

/// <summary>One call the backend made, as the fake saw it (for assertions and fault matching).</summary>
/// <param name="Name">The operation, e.g. <c>ReplaceRoute</c>, <c>CreateVxlanLink</c>, <c>GetLink</c>.</param>
/// <param name="Spec">Its argument (a spec record, an index, a name), or null.</param>
public sealed record FakeNetlinkOperation(string Name, object? Spec);

/// <summary>
/// An in-memory network namespace behind <see cref="INetlink"/>, with the kernel's semantics where backends
/// depend on them: links have indexes and up/down state; addresses on an up link add their prefix route; routes
/// are keyed by table and destination and replaced in place; a gateway must be reachable unless the route is
/// onlink, and onlink needs an up device; nexthop objects must exist before a route uses them and take their
/// routes with them when deleted; vxlan FDB entries are keyed by MAC and a replace rewrites the destination;
/// deleting a link flushes everything on it and notifies watchers; deletes of missing objects fail with
/// ENOENT/ESRCH and adds of existing ones with EEXIST. Tests can inject faults per object and change state
/// behind the backend's back.
/// </summary>
public sealed class FakeNetlink : INetlink, ISysctl
{
    private const int Eperm = 1;
    private const int Enoent = 2;
    private const int Esrch = 3;
    private const int Eexist = 17;
    private const int Enodev = 19;
    private const int Einval = 22;
    private const int Eopnotsupp = 95;
    private const int Eaddrnotavail = 99;
    private const int Enetdown = 100;
    private const int Enetunreach = 101;

    private readonly Lock _sync = new();
    private readonly Dictionary<int, LinkInfo> _links = [];
    private readonly List<AddressInfo> _addresses = [];
    private readonly List<RouteInfo> _routes = [];
    private readonly Dictionary<(int Link, IPAddress Address), NeighborInfo> _neighbors = [];
    private readonly List<FdbEntryInfo> _fdb = [];
    private readonly Dictionary<uint, NexthopInfo> _nexthops = [];
    private readonly Dictionary<string, string> _sysctls = new(StringComparer.Ordinal);
    private readonly List<FaultRule> _faults = [];
    private readonly List<FakeNetlinkOperation> _calls = [];
    private readonly List<(NetlinkNotificationGroups Groups, Channel<NetlinkNotification> Channel)> _watchers = [];
    private int _nextIndex = 2;
    private uint _sequence;
    private long _mutations;

    /// <summary>Creates a namespace that holds only <c>lo</c> (index 1, up).</summary>
    public FakeNetlink()
    {
        _links[1] = new LinkInfo { Index = 1, Name = "lo", Mtu = 65536, IsUp = true };
    }

    /// <summary>Every call made through <see cref="INetlink"/> (batched operations individually), in order.</summary>
    public IReadOnlyList<FakeNetlinkOperation> Calls
    {
        get
        {
            lock (_sync)
            {
                return [.. _calls];
            }
        }
    }

    /// <summary>Number of successful operations applied through <see cref="ApplyAsync"/> (not through the test helpers).</summary>
    public long MutationCount => Interlocked.Read(ref _mutations);

    /// <summary>Number of <see cref="ApplyAsync"/> calls.</summary>
    public int BatchCount { get; private set; }

    /// <summary>Links, by index.</summary>
    public IReadOnlyList<LinkInfo> Links => Snapshot(() => _links.Values.OrderBy(l => l.Index).ToList());

    /// <summary>Addresses.</summary>
    public IReadOnlyList<AddressInfo> Addresses => Snapshot(() => _addresses.ToList());

    /// <summary>Routes of every table.</summary>
    public IReadOnlyList<RouteInfo> Routes => Snapshot(() => _routes.ToList());

    /// <summary>Neighbours (not FDB entries).</summary>
    public IReadOnlyList<NeighborInfo> Neighbors => Snapshot(() => _neighbors.Values.ToList());

    /// <summary>FDB entries, one per (MAC, destination).</summary>
    public IReadOnlyList<FdbEntryInfo> FdbEntries => Snapshot(() => _fdb.ToList());

    /// <summary>Nexthop objects.</summary>
    public IReadOnlyList<NexthopInfo> Nexthops => Snapshot(() => _nexthops.Values.OrderBy(n => n.Id).ToList());

    /// <summary>Sysctls written, by key.</summary>
    public IReadOnlyDictionary<string, string> Sysctls => Snapshot(() => new Dictionary<string, string>(_sysctls, StringComparer.Ordinal));

    /// <summary>
    /// Rewrites a vxlan link after every change to it (creation, MTU, MAC), e.g. to mimic udev replacing the MAC
    /// (flannel-io/flannel#1795).
    /// </summary>
    public Func<LinkInfo, LinkInfo>? VxlanLinkRewriter { get; set; }

    /// <summary>Number of active <see cref="WatchAsync"/> subscriptions.</summary>
    public int WatcherCount => Snapshot(() => _watchers.Count);

    // ----- Test helpers (no fault injection, not logged as calls) -----

    /// <summary>Adds an up "physical" underlay link with an address (and so its prefix route).</summary>
    public LinkInfo AddUnderlay(string name, string addressWithPrefix, int mtu = 1500)
    {
        lock (_sync)
        {
            var link = new LinkInfo { Index = _nextIndex++, Name = name, Mtu = mtu, IsUp = true, Address = MacAddress.NewRandomLocal() };
            _links[link.Index] = link;
            AddAddressLocked(link.Index, ParseInterfaceAddress(addressWithPrefix, out IPAddress local), local);
            return link;
        }
    }

    /// <summary>Adds a route as another program would (e.g. <c>proto static</c>), bypassing faults.</summary>
    public void AddForeignRoute(RouteSpec route)
    {
        ArgumentNullException.ThrowIfNull(route);
        lock (_sync)
        {
            ReplaceRouteLocked(route);
        }
    }

    /// <summary>Finds a link by name.</summary>
    public LinkInfo? FindLink(string name) => Snapshot(() => _links.Values.FirstOrDefault(l => l.Name == name));

    /// <summary>Deletes a link as an administrator would (<c>ip link del</c>): flushes its objects and notifies watchers.</summary>
    public void DeleteLinkBehindBack(string name)
    {
        lock (_sync)
        {
            LinkInfo link = _links.Values.FirstOrDefault(l => l.Name == name) ?? throw new InvalidOperationException($"no link {name}");
            DeleteLinkLocked(link.Index);
        }
    }

    /// <summary>Sets a link down or up as an administrator would; down flushes its routes, up restores prefix routes.</summary>
    public void SetLinkUpBehindBack(string name, bool up)
    {
        lock (_sync)
        {
            LinkInfo link = _links.Values.FirstOrDefault(l => l.Name == name) ?? throw new InvalidOperationException($"no link {name}");
            SetUpLocked(link.Index, up);
        }
    }

    /// <summary>Removes routes matching <paramref name="match"/> (<c>ip route del</c> behind the backend's back); returns how many.</summary>
    public int RemoveRoutesBehindBack(Func<RouteInfo, bool> match)
    {
        lock (_sync)
        {
            List<RouteInfo> gone = _routes.Where(match).ToList();
            foreach (RouteInfo route in gone)
            {
                _routes.Remove(route);
                Notify(NetlinkNotificationGroups.Route, new NetlinkNotification { Kind = NetlinkNotificationKind.RouteDeleted, Route = route });
            }

            return gone.Count;
        }
    }

    /// <summary>Removes neighbours matching <paramref name="match"/>; returns how many.</summary>
    public int RemoveNeighborsBehindBack(Func<NeighborInfo, bool> match)
    {
        lock (_sync)
        {
            var gone = _neighbors.Where(kv => match(kv.Value)).Select(kv => kv.Key).ToList();
            foreach (var key in gone)
            {
                _neighbors.Remove(key);
            }

            return gone.Count;
        }
    }

    /// <summary>Removes FDB entries matching <paramref name="match"/>; returns how many.</summary>
    public int RemoveFdbEntriesBehindBack(Func<FdbEntryInfo, bool> match)
    {
        lock (_sync)
        {
            return _fdb.RemoveAll(e => match(e));
        }
    }

    /// <summary>Changes a neighbour's MAC behind the backend's back (e.g. a stale ARP entry).</summary>
    public void SetNeighborBehindBack(int linkIndex, IPAddress address, MacAddress mac, NeighborState state = NeighborState.Permanent)
    {
        lock (_sync)
        {
            _neighbors[(linkIndex, address)] = new NeighborInfo { LinkIndex = linkIndex, Address = address, LinkLayerAddress = mac, State = state };
        }
    }

    /// <summary>Adds an FDB entry behind the backend's back.</summary>
    public void AddFdbEntryBehindBack(int linkIndex, MacAddress mac, IPAddress destination)
    {
        lock (_sync)
        {
            _fdb.Add(new FdbEntryInfo { LinkIndex = linkIndex, MacAddress = mac, Destination = destination, State = NeighborState.Permanent | NeighborState.NoArp, Flags = NeighborFlags.Self });
        }
    }

    /// <summary>
    /// Makes every matching operation fail with <paramref name="errno"/> (e.g. a "bad peer"), at most
    /// <paramref name="times"/> times when given. Dispose the result to lift the fault.
    /// </summary>
    public IDisposable InjectFault(Func<FakeNetlinkOperation, bool> match, int errno = Einval, int? times = null)
    {
        ArgumentNullException.ThrowIfNull(match);
        var rule = new FaultRule(this, match, errno, times);
        lock (_sync)
        {
            _faults.Add(rule);
        }

        return rule;
    }

    /// <summary>Clears the call log.</summary>
    public void ClearCalls()
    {
        lock (_sync)
        {
            _calls.Clear();
        }
    }

    // ----- INetlink -----

    /// <inheritdoc />
    public ValueTask<LinkInfo?> GetLinkAsync(string name, CancellationToken cancellationToken) =>
        Run<LinkInfo?>("GetLink", name, "RTM_GETLINK", () => _links.Values.FirstOrDefault(l => l.Name == name));

    /// <inheritdoc />
    public ValueTask<LinkInfo?> GetLinkAsync(int index, CancellationToken cancellationToken) =>
        Run<LinkInfo?>("GetLink", index, "RTM_GETLINK", () => _links.GetValueOrDefault(index));

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<LinkInfo>> ListLinksAsync(CancellationToken cancellationToken) =>
        Run<IReadOnlyList<LinkInfo>>("ListLinks", null, "RTM_GETLINK", () => _links.Values.OrderBy(l => l.Index).ToList());

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<AddressInfo>> ListAddressesAsync(int? linkIndex, AddressFamily? family, CancellationToken cancellationToken) =>
        Run<IReadOnlyList<AddressInfo>>("ListAddresses", (linkIndex, family), "RTM_GETADDR", () => _addresses
            .Where(a => (linkIndex is null || a.LinkIndex == linkIndex) && (family is null || a.Local.AddressFamily == family))
            .ToList());

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<RouteInfo>> ListRoutesAsync(RouteFilter filter, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        return Run<IReadOnlyList<RouteInfo>>("ListRoutes", filter, "RTM_GETROUTE", () => _routes
            .Where(r => (filter.Family is null || r.Destination.BaseAddress.AddressFamily == filter.Family)
                && (filter.Table is null || r.Table == filter.Table)
                && (filter.LinkIndex is null || r.LinkIndex == filter.LinkIndex)
                && (filter.Protocol is null || r.Protocol == filter.Protocol))
            .ToList());
    }

    /// <inheritdoc />
    public ValueTask<RouteInfo?> GetRouteToAsync(IPAddress destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(destination);
        return Run<RouteInfo?>("GetRouteTo", destination, "RTM_GETROUTE", () =>
        {
            RouteInfo? best = Lookup(destination, linkIndex: null);
            if (best is null)
            {
                return null;
            }

            return best with { Destination = new IPNetwork(destination, destination.AddressFamily == AddressFamily.InterNetwork ? 32 : 128) };
        });
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<NeighborInfo>> ListNeighborsAsync(int linkIndex, AddressFamily? family, CancellationToken cancellationToken) =>
        Run<IReadOnlyList<NeighborInfo>>("ListNeighbors", (linkIndex, family), "RTM_GETNEIGH", () => _neighbors.Values
            .Where(n => n.LinkIndex == linkIndex && (family is null || n.Address.AddressFamily == family))
            .ToList());

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<FdbEntryInfo>> ListFdbEntriesAsync(int linkIndex, CancellationToken cancellationToken) =>
        Run<IReadOnlyList<FdbEntryInfo>>("ListFdbEntries", linkIndex, "RTM_GETNEIGH", () => _fdb.Where(e => e.LinkIndex == linkIndex).ToList());

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<NexthopInfo>> ListNexthopsAsync(byte? protocol, CancellationToken cancellationToken) =>
        Run<IReadOnlyList<NexthopInfo>>("ListNexthops", protocol, "RTM_GETNEXTHOP", () => _nexthops.Values
            .Where(n => protocol is null || n.Protocol == protocol)
            .OrderBy(n => n.Id)
            .ToList());

    /// <inheritdoc />
    public ValueTask<NetlinkBatchResult> ApplyAsync(NetlinkBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        var errors = new NetlinkException?[batch.Count];
        lock (_sync)
        {
            BatchCount++;
            for (int i = 0; i < batch.Count; i++)
            {
                NetlinkOperation op = batch.Operations[i];
                FakeNetlinkOperation call = CallOf(op);
                _calls.Add(call);
                try
                {
                    CheckFault(call, op.MessageName);
                    Apply(op);
                    Interlocked.Increment(ref _mutations);
                }
                catch (NetlinkException ex)
                {
                    errors[i] = ex;
                }
            }
        }

        return ValueTask.FromResult(new NetlinkBatchResult(errors));
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<NetlinkNotification> WatchAsync(NetlinkNotificationGroups groups, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var channel = Channel.CreateUnbounded<NetlinkNotification>();
        var entry = (groups, channel);
        lock (_sync)
        {
            _watchers.Add(entry);
        }

        try
        {
            while (await channel.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (channel.Reader.TryRead(out NetlinkNotification? notification))
                {
                    yield return notification;
                }
            }
        }
        finally
        {
            lock (_sync)
            {
                _watchers.Remove(entry);
            }
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        lock (_sync)
        {
            foreach (var (_, channel) in _watchers)
            {
                channel.Writer.TryComplete();
            }
        }

        return ValueTask.CompletedTask;
    }

    // ----- ISysctl -----

    /// <summary>Records a sysctl write; a per-device key of a device that does not exist fails, as /proc/sys does.</summary>
    public ValueTask WriteAsync(string key, string value, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        lock (_sync)
        {
            var call = new FakeNetlinkOperation("WriteSysctl", (key, value));
            _calls.Add(call);
            try
            {
                CheckFault(call, "sysctl");
                string[] parts = key.Split('/');
                if (parts.Length == 5 && parts[0] == "net" && parts[2] == "conf" && parts[3] is not ("all" or "default")
                    && !_links.Values.Any(l => l.Name == parts[3]))
                {
                    throw new FileNotFoundException($"/proc/sys/{key} does not exist");
                }

                _sysctls[key] = value;
                return ValueTask.CompletedTask;
            }
            catch (Exception ex) when (ex is NetlinkException or IOException)
            {
                return ValueTask.FromException(ex);
            }
        }
    }

    // ----- operations -----

    /// <summary>The call-log entry of an operation: a stable name and its typed argument (for assertions and faults).</summary>
    private static FakeNetlinkOperation CallOf(NetlinkOperation operation) => operation switch
    {
        RouteReplace o => new("ReplaceRoute", o.Route),
        RouteDelete o => new("DeleteRoute", o.Route),
        NeighborReplace o => new("ReplaceNeighbor", o.Neighbor),
        NeighborDelete o => new("DeleteNeighbor", o.Neighbor),
        FdbEntryReplace o => new("ReplaceFdbEntry", o.Entry),
        FdbEntryDelete o => new("DeleteFdbEntry", o.Entry),
        NexthopReplace o => new("ReplaceNexthop", o.Nexthop),
        NexthopDelete o => new("DeleteNexthop", o.Id),
        LinkCreate o => new("CreateLink", o.Link),
        VxlanLinkCreate o => new("CreateVxlanLink", o.Link),
        LinkDelete o => new("DeleteLink", o.Index),
        LinkSetUp o => new("SetLinkUp", (o.Index, o.Up)),
        LinkSetMtu o => new("SetLinkMtu", (o.Index, o.Mtu)),
        LinkSetAddress o => new("SetLinkAddress", (o.Index, o.Address)),
        AddressAdd o => new("AddAddress", (o.LinkIndex, o.Local, o.PrefixLength)),
        AddressDelete o => new("DeleteAddress", (o.LinkIndex, o.Local, o.PrefixLength)),
        _ => new(operation.GetType().Name, operation),
    };

    /// <summary>Applies one operation to the in-memory namespace (under the lock), with the kernel's outcome.</summary>
    private void Apply(NetlinkOperation operation)
    {
        switch (operation)
        {
            case RouteReplace o: ReplaceRouteLocked(o.Route); break;
            case RouteDelete o: DeleteRouteLocked(o.Route); break;
            case NeighborReplace o: ReplaceNeighborLocked(o.Neighbor); break;
            case NeighborDelete o: DeleteNeighborLocked(o.Neighbor); break;
            case FdbEntryReplace o: ReplaceFdbLocked(o.Entry); break;
            case FdbEntryDelete o: DeleteFdbLocked(o.Entry); break;
            case NexthopReplace o: ReplaceNexthopLocked(o.Nexthop); break;
            case NexthopDelete o: DeleteNexthopLocked(o.Id); break;
            case LinkCreate o: CreateLinkLocked(o.Link); break;
            case VxlanLinkCreate o: CreateVxlanLinkLocked(o.Link); break;
            case LinkDelete o:
                RequireLink("RTM_DELLINK", o.Index);
                DeleteLinkLocked(o.Index);
                break;
            case LinkSetUp o:
                RequireLink("RTM_NEWLINK", o.Index);
                SetUpLocked(o.Index, o.Up);
                break;
            case LinkSetMtu o:
                if (o.Mtu < 68)
                {
                    throw Error("RTM_NEWLINK", Einval, $"mtu {o.Mtu}");
                }

                RewriteLinkLocked(RequireLink("RTM_NEWLINK", o.Index) with { Mtu = o.Mtu });
                break;
            case LinkSetAddress o:
                RewriteLinkLocked(RequireLink("RTM_NEWLINK", o.Index) with { Address = o.Address });
                break;
            case AddressAdd o:
                RequireLink("RTM_NEWADDR", o.LinkIndex);
                if (_addresses.Any(a => a.LinkIndex == o.LinkIndex && a.Local.Equals(o.Local)))
                {
                    throw Error("RTM_NEWADDR", Eexist, $"{o.Local}/{o.PrefixLength}");
                }

                AddAddressLocked(o.LinkIndex, new IPNetwork(IPNetworkMath.Mask(o.Local, o.PrefixLength), o.PrefixLength), o.Local);
                break;
            case AddressDelete o:
                AddressInfo found = _addresses.FirstOrDefault(a => a.LinkIndex == o.LinkIndex && a.Local.Equals(o.Local) && a.Address.PrefixLength == o.PrefixLength)
                    ?? throw Error("RTM_DELADDR", Eaddrnotavail, $"{o.Local}/{o.PrefixLength}");
                RemoveAddressLocked(found);
                break;
            default:
                throw Error(operation.MessageName, Eopnotsupp, operation.ToString());
        }
    }

    private void CreateLinkLocked(LinkSpec spec)
    {
        if (_links.Values.Any(l => l.Name == spec.Name))
        {
            throw Error("RTM_NEWLINK", Eexist, spec.Name);
        }

        string kind = spec.Kind switch { LinkKind.Bridge => "bridge", LinkKind.Veth => "veth", LinkKind.WireGuard => "wireguard", _ => "dummy" };
        var link = new LinkInfo
        {
            Index = _nextIndex++,
            Name = spec.Name,
            Kind = kind,
            Mtu = spec.Mtu ?? (spec.Kind == LinkKind.WireGuard ? 1420 : 1500),
            Address = spec.Kind == LinkKind.WireGuard ? null : spec.Address ?? MacAddress.NewRandomLocal(),
            MasterIndex = spec.MasterIndex,
        };
        _links[link.Index] = link;
        if (spec.Kind == LinkKind.Veth && spec.PeerName is { } peer && spec.PeerNamespacePath is null)
        {
            var other = link with { Index = _nextIndex++, Name = peer, MasterIndex = null, Address = MacAddress.NewRandomLocal() };
            _links[other.Index] = other;
        }

        Notify(NetlinkNotificationGroups.Link, new NetlinkNotification { Kind = NetlinkNotificationKind.LinkAddedOrChanged, Link = link });
    }

    private void CreateVxlanLinkLocked(VxlanLinkSpec spec)
    {
        if (spec.Name.Length is 0 or > 15)
        {
            throw Error("RTM_NEWLINK", Einval, $"bad device name '{spec.Name}'");
        }

        if (_links.Values.Any(l => l.Name == spec.Name))
        {
            throw Error("RTM_NEWLINK", Eexist, spec.Name);
        }

        if (spec.UnderlayIndex is { } underlay && !_links.ContainsKey(underlay))
        {
            throw Error("RTM_NEWLINK", Enodev, $"underlay #{underlay}");
        }

        // The request carries no MTU or MAC (they are set afterwards): the kernel derives the MTU from the underlay.
        var link = new LinkInfo
        {
            Index = _nextIndex++,
            Name = spec.Name,
            Kind = "vxlan",
            Mtu = spec.UnderlayIndex is { } u ? _links[u].Mtu - 50 : 1450,
            Address = MacAddress.NewRandomLocal(),
            Vxlan = new VxlanInfo
            {
                Vni = spec.Vni,
                Local = spec.Local,
                UnderlayIndex = spec.UnderlayIndex,
                Port = spec.Port == 0 ? (ushort)8472 : spec.Port,
                Learning = spec.Learning,
                Gbp = spec.Gbp,
            },
        };
        _links[link.Index] = link;
        RewriteLinkLocked(link);
    }

    /// <summary>Stores a changed link (through <see cref="VxlanLinkRewriter"/> for vxlan devices) and notifies.</summary>
    private void RewriteLinkLocked(LinkInfo link)
    {
        if (link.Kind == "vxlan" && VxlanLinkRewriter is { } rewrite)
        {
            link = rewrite(link);
        }

        _links[link.Index] = link;
        Notify(NetlinkNotificationGroups.Link, new NetlinkNotification { Kind = NetlinkNotificationKind.LinkAddedOrChanged, Link = link });
    }

    // ----- kernel semantics -----

    private LinkInfo RequireLink(string operation, int index) =>
        _links.TryGetValue(index, out LinkInfo? link) ? link : throw Error(operation, Enodev, $"link #{index}");

    private void DeleteLinkLocked(int index)
    {
        LinkInfo link = _links[index];
        _links.Remove(index);
        _addresses.RemoveAll(a => a.LinkIndex == index);
        var deadNexthops = _nexthops.Values.Where(n => n.LinkIndex == index).Select(n => n.Id).ToHashSet();
        foreach (uint id in deadNexthops)
        {
            _nexthops.Remove(id);
        }

        _routes.RemoveAll(r => r.LinkIndex == index || (r.NexthopId is { } nh && deadNexthops.Contains(nh)));
        foreach (var key in _neighbors.Keys.Where(k => k.Link == index).ToList())
        {
            _neighbors.Remove(key);
        }

        _fdb.RemoveAll(e => e.LinkIndex == index);
        foreach (string key in _sysctls.Keys.Where(k => k.Contains($"/conf/{link.Name}/", StringComparison.Ordinal)).ToList())
        {
            _sysctls.Remove(key);
        }

        Notify(NetlinkNotificationGroups.Link, new NetlinkNotification { Kind = NetlinkNotificationKind.LinkDeleted, Link = link });
    }

    private void SetUpLocked(int index, bool up)
    {
        LinkInfo link = _links[index];
        if (link.IsUp == up)
        {
            return;
        }

        link = _links[index] = link with { IsUp = up };
        if (up)
        {
            foreach (AddressInfo address in _addresses.Where(a => a.LinkIndex == index).ToList())
            {
                AddPrefixRouteLocked(address);
            }
        }
        else
        {
            // The kernel flushes every route through a link that goes down.
            _routes.RemoveAll(r => r.LinkIndex == index);
        }

        Notify(NetlinkNotificationGroups.Link, new NetlinkNotification { Kind = NetlinkNotificationKind.LinkAddedOrChanged, Link = link });
    }

    private void AddAddressLocked(int linkIndex, IPNetwork address, IPAddress local)
    {
        var info = new AddressInfo
        {
            LinkIndex = linkIndex,
            Address = new IPNetwork(IPNetworkMath.Mask(local, address.PrefixLength), address.PrefixLength),
            Local = local,
            Flags = AddressFlags.Permanent,
        };
        _addresses.Add(info);
        if (_links[linkIndex].IsUp)
        {
            AddPrefixRouteLocked(info);
        }
    }

    private void RemoveAddressLocked(AddressInfo address)
    {
        _addresses.Remove(address);
        _routes.RemoveAll(r => r.Protocol == RouteDefaults.ProtocolKernel && r.LinkIndex == address.LinkIndex && r.Destination == address.Address);
    }

    private void AddPrefixRouteLocked(AddressInfo address)
    {
        int hostBits = IPNetworkMath.BitLength(address.Local.AddressFamily);
        if (address.Address.PrefixLength == hostBits)
        {
            return; // a /32 or /128 gets no prefix route
        }

        _routes.RemoveAll(r => r.Table == RouteDefaults.MainTable && r.Destination == address.Address && r.LinkIndex == address.LinkIndex && r.Protocol == RouteDefaults.ProtocolKernel);
        _routes.Add(new RouteInfo
        {
            Destination = address.Address,
            LinkIndex = address.LinkIndex,
            PreferredSource = address.Local,
            Table = RouteDefaults.MainTable,
            Protocol = RouteDefaults.ProtocolKernel,
            Scope = RouteScope.Link,
            Type = RouteType.Unicast,
        });
    }

    /// <summary>Longest-prefix match in the main table, optionally only routes out of one link.</summary>
    private RouteInfo? Lookup(IPAddress destination, int? linkIndex) => _routes
        .Where(r => r.Table == RouteDefaults.MainTable && r.Type == RouteType.Unicast
            && r.Destination.BaseAddress.AddressFamily == destination.AddressFamily
            && r.Destination.Contains(destination)
            && (linkIndex is null || r.LinkIndex == linkIndex))
        .OrderByDescending(r => r.Destination.PrefixLength)
        .FirstOrDefault();

    /// <summary>Checks a gateway the way fib_check_nh does and returns the output link.</summary>
    private int ResolveGateway(string operation, IPAddress gateway, int? linkIndex, bool onLink)
    {
        if (linkIndex is { } index)
        {
            LinkInfo link = RequireLink(operation, index);
            if (onLink)
            {
                return link.IsUp ? index : throw Error(operation, Enetdown, "Nexthop device is not up");
            }
        }
        else if (onLink)
        {
            throw Error(operation, Einval, "onlink requires a device");
        }

        RouteInfo? via = Lookup(gateway, linkIndex);
        if (via is null || via.Gateway is not null || via.LinkIndex is null)
        {
            throw Error(operation, Enetunreach, $"Nexthop has invalid gateway {gateway}");
        }

        return via.LinkIndex.Value;
    }

    private void ReplaceRouteLocked(RouteSpec route)
    {
        const string Op = "RTM_NEWROUTE";
        IPNetwork destination = route.Destination;
        if (!IPNetworkMath.Mask(destination.BaseAddress, destination.PrefixLength).Equals(destination.BaseAddress))
        {
            throw Error(Op, Einval, "Invalid prefix for given prefix length");
        }

        int? linkIndex = route.LinkIndex;
        IPAddress? gateway = route.Gateway;
        bool onLink = route.OnLink;
        if (route.NexthopId is { } nhid)
        {
            if (!_nexthops.TryGetValue(nhid, out NexthopInfo? nexthop))
            {
                throw Error(Op, Einval, "Nexthop id does not exist");
            }

            linkIndex = nexthop.LinkIndex;
            gateway = nexthop.Gateway;
            onLink = nexthop.OnLink;
        }
        else if (gateway is not null)
        {
            if (gateway.AddressFamily != destination.BaseAddress.AddressFamily)
            {
                throw Error(Op, Einval, "gateway family differs from destination");
            }

            linkIndex = ResolveGateway(Op, gateway, linkIndex, onLink);
        }
        else if (linkIndex is { } index)
        {
            RequireLink(Op, index);
        }
        else if (route.Type == RouteType.Unicast)
        {
            throw Error(Op, Enodev, "no device and no gateway");
        }

        _routes.RemoveAll(r => r.Table == route.Table && r.Destination == destination);
        var info = new RouteInfo
        {
            Destination = destination,
            Gateway = gateway,
            LinkIndex = linkIndex,
            OnLink = onLink,
            Table = route.Table,
            Protocol = route.Protocol,
            Scope = route.Scope,
            Type = route.Type,
            NexthopId = route.NexthopId,
        };
        _routes.Add(info);
        Notify(NetlinkNotificationGroups.Route, new NetlinkNotification { Kind = NetlinkNotificationKind.RouteAdded, Route = info });
    }

    private void DeleteRouteLocked(RouteSpec route)
    {
        // fib_table_delete: destination and table always; protocol, gateway, device and nexthop id when given.
        RouteInfo? found = _routes.FirstOrDefault(r => r.Table == route.Table
            && r.Destination == route.Destination
            && (route.Protocol == 0 || r.Protocol == route.Protocol)
            && (route.NexthopId is null || r.NexthopId == route.NexthopId)
            && (route.Gateway is null || Equals(r.Gateway, route.Gateway))
            && (route.LinkIndex is null || r.LinkIndex == route.LinkIndex))
            ?? throw Error("RTM_DELROUTE", Esrch, route.Destination.ToString());
        _routes.Remove(found);
        Notify(NetlinkNotificationGroups.Route, new NetlinkNotification { Kind = NetlinkNotificationKind.RouteDeleted, Route = found });
    }

    private void ReplaceNeighborLocked(NeighborSpec neighbor)
    {
        RequireLink("RTM_NEWNEIGH", neighbor.LinkIndex);
        _neighbors[(neighbor.LinkIndex, neighbor.Address)] = new NeighborInfo
        {
            LinkIndex = neighbor.LinkIndex,
            Address = neighbor.Address,
            LinkLayerAddress = neighbor.LinkLayerAddress,
            State = NeighborState.Permanent,
        };
    }

    private void DeleteNeighborLocked(NeighborSpec neighbor)
    {
        if (!_neighbors.Remove((neighbor.LinkIndex, neighbor.Address)))
        {
            throw Error("RTM_DELNEIGH", Enoent, neighbor.Address.ToString());
        }
    }

    private void ReplaceFdbLocked(FdbEntrySpec entry)
    {
        LinkInfo link = RequireLink("RTM_NEWNEIGH", entry.LinkIndex);
        if (link.Kind != "vxlan")
        {
            throw Error("RTM_NEWNEIGH", Eopnotsupp, $"{link.Name} is not a vxlan device");
        }

        // vxlan_fdb_update with NLM_F_REPLACE: the MAC keys the entry; its (first) remote is rewritten.
        int at = _fdb.FindIndex(e => e.LinkIndex == entry.LinkIndex && e.MacAddress == entry.MacAddress);
        var info = new FdbEntryInfo { LinkIndex = entry.LinkIndex, MacAddress = entry.MacAddress, Destination = entry.Destination, State = NeighborState.Permanent | NeighborState.NoArp, Flags = NeighborFlags.Self };
        if (at >= 0)
        {
            _fdb[at] = info;
        }
        else
        {
            _fdb.Add(info);
        }
    }

    private void DeleteFdbLocked(FdbEntrySpec entry)
    {
        int removed = _fdb.RemoveAll(e => e.LinkIndex == entry.LinkIndex && e.MacAddress == entry.MacAddress && Equals(e.Destination, entry.Destination));
        if (removed == 0)
        {
            throw Error("RTM_DELNEIGH", Enoent, $"{entry.MacAddress} dst {entry.Destination}");
        }
    }

    private void ReplaceNexthopLocked(NexthopSpec nexthop)
    {
        const string Op = "RTM_NEWNEXTHOP";
        if (nexthop.Id == 0)
        {
            throw Error(Op, Einval, "Invalid nexthop id");
        }

        int link = ResolveGateway(Op, nexthop.Gateway, nexthop.LinkIndex, nexthop.OnLink);
        _nexthops[nexthop.Id] = new NexthopInfo
        {
            Id = nexthop.Id,
            Gateway = nexthop.Gateway,
            LinkIndex = link,
            OnLink = nexthop.OnLink,
            Protocol = nexthop.Protocol,
        };
    }

    private void DeleteNexthopLocked(uint id)
    {
        if (!_nexthops.Remove(id))
        {
            throw Error("RTM_DELNEXTHOP", Enoent, $"id {id}");
        }

        _routes.RemoveAll(r => r.NexthopId == id);
    }

    // ----- plumbing -----

    /// <summary>A read: logged as a call and subject to injected faults; never counts as a mutation.</summary>
    private ValueTask<T> Run<T>(string name, object? spec, string operation, Func<T> read)
    {
        lock (_sync)
        {
            var call = new FakeNetlinkOperation(name, spec);
            _calls.Add(call);
            try
            {
                CheckFault(call, operation);
                return ValueTask.FromResult(read());
            }
            catch (NetlinkException ex)
            {
                return ValueTask.FromException<T>(ex);
            }
        }
    }

    private void CheckFault(FakeNetlinkOperation call, string operation)
    {
        foreach (FaultRule rule in _faults)
        {
            if (rule.TryConsume(call))
            {
                throw Error(operation, rule.Errno, $"injected fault for {call.Name}");
            }
        }
    }

    private NetlinkException Error(string operation, int errno, string? detail) =>
        new(operation, errno, ErrnoName(errno), ++_sequence, extendedAckMessage: null, extendedAckOffset: null, detail);

    private static string ErrnoName(int errno) => errno switch
    {
        Eperm => "EPERM",
        Enoent => "ENOENT",
        Esrch => "ESRCH",
        Eexist => "EEXIST",
        Enodev => "ENODEV",
        Einval => "EINVAL",
        Eopnotsupp => "EOPNOTSUPP",
        Eaddrnotavail => "EADDRNOTAVAIL",
        Enetdown => "ENETDOWN",
        Enetunreach => "ENETUNREACH",
        16 => "EBUSY",
        105 => "ENOBUFS",
        _ => $"E{errno}",
    };

    private void Notify(NetlinkNotificationGroups group, NetlinkNotification notification)
    {
        foreach (var (groups, channel) in _watchers)
        {
            if ((groups & group) != 0)
            {
                channel.Writer.TryWrite(notification);
            }
        }
    }

    private T Snapshot<T>(Func<T> read)
    {
        lock (_sync)
        {
            return read();
        }
    }

    private static IPNetwork ParseInterfaceAddress(string text, out IPAddress local)
    {
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        local = IPAddress.Parse(text[..slash]);
        int prefix = int.Parse(text[(slash + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        return new IPNetwork(IPNetworkMath.Mask(local, prefix), prefix);
    }

    private sealed class FaultRule(FakeNetlink owner, Func<FakeNetlinkOperation, bool> match, int errno, int? times) : IDisposable
    {
        private int? _remaining = times;

        public int Errno { get; } = errno;

        public bool TryConsume(FakeNetlinkOperation call)
        {
            if (_remaining is 0 || !match(call))
            {
                return false;
            }

            if (_remaining is { } left)
            {
                _remaining = left - 1;
            }

            return true;
        }

        public void Dispose()
        {
            lock (owner._sync)
            {
                owner._faults.Remove(this);
            }
        }
    }
}
