using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Flannel.Netlink;
using Flannel.Networking;

namespace Flannel.Testing.FakeNetlink;

/// <summary>One call the backend made, as the fake saw it (for assertions and fault matching).</summary>
/// <param name="Name">The operation, e.g. <c>ReplaceRoute</c>, <c>EnsureVxlanLink</c>.</param>
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
public sealed class FakeNetlink : INetlink
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

    /// <summary>Number of successful changes made through <see cref="INetlink"/> (not through the test helpers).</summary>
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
    /// Rewrites a vxlan link right after it is created or reused, e.g. to mimic udev replacing the MAC
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
    public void SetNeighborBehindBack(int linkIndex, IPAddress address, MacAddress mac, ushort state = 0x80)
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
            _fdb.Add(new FdbEntryInfo { LinkIndex = linkIndex, MacAddress = mac, Destination = destination, State = 0x80, Flags = 0x02 });
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
    public ValueTask<LinkInfo> EnsureVxlanLinkAsync(VxlanLinkSpec spec, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return Run("EnsureVxlanLink", spec, "RTM_NEWLINK", () =>
        {
            if (spec.Name.Length is 0 or > 15)
            {
                throw Error("RTM_NEWLINK", Einval, $"bad device name '{spec.Name}'");
            }

            if (spec.UnderlayIndex is { } underlay && !_links.ContainsKey(underlay))
            {
                throw Error("RTM_NEWLINK", Enodev, $"underlay #{underlay}");
            }

            LinkInfo? existing = _links.Values.FirstOrDefault(l => l.Name == spec.Name);
            if (existing is not null && !IsCompatible(existing, spec))
            {
                DeleteLinkLocked(existing.Index);
                existing = null;
            }

            if (existing is null)
            {
                int mtu = spec.UnderlayIndex is { } u ? _links[u].Mtu - 50 : 1450;
                existing = new LinkInfo
                {
                    Index = _nextIndex++,
                    Name = spec.Name,
                    Kind = "vxlan",
                    Mtu = mtu,
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
                _links[existing.Index] = existing;
                Notify(NetlinkNotificationGroups.Link, new NetlinkNotification { Kind = NetlinkNotificationKind.LinkAddedOrChanged, Link = existing });
            }

            if (spec.Mtu is { } wantedMtu)
            {
                existing = _links[existing.Index] = existing with { Mtu = wantedMtu };
            }

            if (spec.Address is { } mac)
            {
                existing = _links[existing.Index] = existing with { Address = mac };
            }

            if (VxlanLinkRewriter is { } rewrite)
            {
                existing = _links[existing.Index] = rewrite(existing);
            }

            return existing;
        });
    }

    /// <inheritdoc />
    public ValueTask<LinkInfo> CreateLinkAsync(LinkSpec spec, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return Run("CreateLink", spec, "RTM_NEWLINK", () =>
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
                Mtu = spec.Mtu ?? 1500,
                Address = spec.Address ?? MacAddress.NewRandomLocal(),
                MasterIndex = spec.MasterIndex,
            };
            _links[link.Index] = link;
            if (spec.Kind == LinkKind.Veth && spec.PeerName is { } peer && spec.PeerNamespacePath is null)
            {
                var other = link with { Index = _nextIndex++, Name = peer, MasterIndex = null, Address = MacAddress.NewRandomLocal() };
                _links[other.Index] = other;
            }

            return link;
        });
    }

    /// <inheritdoc />
    public ValueTask<LinkInfo?> GetLinkAsync(string name, CancellationToken cancellationToken) =>
        Run<LinkInfo?>("GetLink", name, "RTM_GETLINK", () => _links.Values.FirstOrDefault(l => l.Name == name), mutates: false);

    /// <inheritdoc />
    public ValueTask<LinkInfo?> GetLinkAsync(int index, CancellationToken cancellationToken) =>
        Run<LinkInfo?>("GetLink", index, "RTM_GETLINK", () => _links.GetValueOrDefault(index), mutates: false);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<LinkInfo>> ListLinksAsync(CancellationToken cancellationToken) =>
        Run<IReadOnlyList<LinkInfo>>("ListLinks", null, "RTM_GETLINK", () => _links.Values.OrderBy(l => l.Index).ToList(), mutates: false);

    /// <inheritdoc />
    public ValueTask DeleteLinkAsync(int index, CancellationToken cancellationToken) =>
        RunVoid("DeleteLink", index, "RTM_DELLINK", () =>
        {
            RequireLink("RTM_DELLINK", index);
            DeleteLinkLocked(index);
        });

    /// <inheritdoc />
    public ValueTask SetLinkUpAsync(int index, bool up, CancellationToken cancellationToken) =>
        RunVoid("SetLinkUp", (index, up), "RTM_NEWLINK", () =>
        {
            RequireLink("RTM_NEWLINK", index);
            SetUpLocked(index, up);
        });

    /// <inheritdoc />
    public ValueTask SetLinkMtuAsync(int index, int mtu, CancellationToken cancellationToken) =>
        RunVoid("SetLinkMtu", (index, mtu), "RTM_NEWLINK", () =>
        {
            LinkInfo link = RequireLink("RTM_NEWLINK", index);
            if (mtu < 68)
            {
                throw Error("RTM_NEWLINK", Einval, $"mtu {mtu}");
            }

            _links[index] = link with { Mtu = mtu };
        });

    /// <inheritdoc />
    public ValueTask SetLinkAddressAsync(int index, MacAddress address, CancellationToken cancellationToken) =>
        RunVoid("SetLinkAddress", (index, address), "RTM_NEWLINK", () =>
        {
            LinkInfo link = RequireLink("RTM_NEWLINK", index);
            _links[index] = link with { Address = address };
        });

    /// <inheritdoc />
    public ValueTask EnsureAddressAsync(int linkIndex, IPNetwork address, IPNetwork? replaceWithin, CancellationToken cancellationToken) =>
        RunVoid("EnsureAddress", (linkIndex, address, replaceWithin), "RTM_NEWADDR", () =>
        {
            RequireLink("RTM_NEWADDR", linkIndex);
            if (replaceWithin is { } within)
            {
                foreach (AddressInfo stale in _addresses.Where(a => a.LinkIndex == linkIndex
                    && a.Local.AddressFamily == address.BaseAddress.AddressFamily
                    && within.Contains(a.Local)
                    && !(a.Local.Equals(address.BaseAddress) && a.Address.PrefixLength == address.PrefixLength)).ToList())
                {
                    RemoveAddressLocked(stale);
                }
            }

            if (!_addresses.Any(a => a.LinkIndex == linkIndex && a.Local.Equals(address.BaseAddress)))
            {
                AddAddressLocked(linkIndex, address, address.BaseAddress);
            }
        });

    /// <inheritdoc />
    public ValueTask AddAddressAsync(int linkIndex, IPNetwork address, CancellationToken cancellationToken) =>
        RunVoid("AddAddress", (linkIndex, address), "RTM_NEWADDR", () =>
        {
            RequireLink("RTM_NEWADDR", linkIndex);
            if (_addresses.Any(a => a.LinkIndex == linkIndex && a.Local.Equals(address.BaseAddress)))
            {
                throw Error("RTM_NEWADDR", Eexist, address.ToString());
            }

            AddAddressLocked(linkIndex, address, address.BaseAddress);
        });

    /// <inheritdoc />
    public ValueTask DeleteAddressAsync(int linkIndex, IPNetwork address, CancellationToken cancellationToken) =>
        RunVoid("DeleteAddress", (linkIndex, address), "RTM_DELADDR", () =>
        {
            AddressInfo found = _addresses.FirstOrDefault(a => a.LinkIndex == linkIndex && a.Local.Equals(address.BaseAddress))
                ?? throw Error("RTM_DELADDR", Eaddrnotavail, address.ToString());
            RemoveAddressLocked(found);
        });

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<AddressInfo>> ListAddressesAsync(int? linkIndex, AddressFamily? family, CancellationToken cancellationToken) =>
        Run<IReadOnlyList<AddressInfo>>("ListAddresses", (linkIndex, family), "RTM_GETADDR", () => _addresses
            .Where(a => (linkIndex is null || a.LinkIndex == linkIndex) && (family is null || a.Local.AddressFamily == family))
            .ToList(), mutates: false);

    /// <inheritdoc />
    public ValueTask ReplaceRouteAsync(RouteSpec route, CancellationToken cancellationToken) =>
        RunVoid("ReplaceRoute", route, "RTM_NEWROUTE", () => ReplaceRouteLocked(route));

    /// <inheritdoc />
    public ValueTask DeleteRouteAsync(RouteSpec route, CancellationToken cancellationToken) =>
        RunVoid("DeleteRoute", route, "RTM_DELROUTE", () => DeleteRouteLocked(route));

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<RouteInfo>> ListRoutesAsync(RouteFilter filter, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        return Run<IReadOnlyList<RouteInfo>>("ListRoutes", filter, "RTM_GETROUTE", () => _routes
            .Where(r => (filter.Family is null || r.Destination.BaseAddress.AddressFamily == filter.Family)
                && (filter.Table is null || r.Table == filter.Table)
                && (filter.LinkIndex is null || r.LinkIndex == filter.LinkIndex)
                && (filter.Protocol is null || r.Protocol == filter.Protocol))
            .ToList(), mutates: false);
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
        }, mutates: false);
    }

    /// <inheritdoc />
    public ValueTask ReplaceNeighborAsync(NeighborSpec neighbor, CancellationToken cancellationToken) =>
        RunVoid("ReplaceNeighbor", neighbor, "RTM_NEWNEIGH", () => ReplaceNeighborLocked(neighbor));

    /// <inheritdoc />
    public ValueTask DeleteNeighborAsync(NeighborSpec neighbor, CancellationToken cancellationToken) =>
        RunVoid("DeleteNeighbor", neighbor, "RTM_DELNEIGH", () => DeleteNeighborLocked(neighbor));

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<NeighborInfo>> ListNeighborsAsync(int linkIndex, AddressFamily? family, CancellationToken cancellationToken) =>
        Run<IReadOnlyList<NeighborInfo>>("ListNeighbors", (linkIndex, family), "RTM_GETNEIGH", () => _neighbors.Values
            .Where(n => n.LinkIndex == linkIndex && (family is null || n.Address.AddressFamily == family))
            .ToList(), mutates: false);

    /// <inheritdoc />
    public ValueTask ReplaceFdbEntryAsync(FdbEntrySpec entry, CancellationToken cancellationToken) =>
        RunVoid("ReplaceFdbEntry", entry, "RTM_NEWNEIGH", () => ReplaceFdbLocked(entry));

    /// <inheritdoc />
    public ValueTask DeleteFdbEntryAsync(FdbEntrySpec entry, CancellationToken cancellationToken) =>
        RunVoid("DeleteFdbEntry", entry, "RTM_DELNEIGH", () => DeleteFdbLocked(entry));

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<FdbEntryInfo>> ListFdbEntriesAsync(int linkIndex, CancellationToken cancellationToken) =>
        Run<IReadOnlyList<FdbEntryInfo>>("ListFdbEntries", linkIndex, "RTM_GETNEIGH", () => _fdb.Where(e => e.LinkIndex == linkIndex).ToList(), mutates: false);

    /// <inheritdoc />
    public ValueTask ReplaceNexthopAsync(NexthopSpec nexthop, CancellationToken cancellationToken) =>
        RunVoid("ReplaceNexthop", nexthop, "RTM_NEWNEXTHOP", () => ReplaceNexthopLocked(nexthop));

    /// <inheritdoc />
    public ValueTask DeleteNexthopAsync(uint id, CancellationToken cancellationToken) =>
        RunVoid("DeleteNexthop", id, "RTM_DELNEXTHOP", () => DeleteNexthopLocked(id));

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<NexthopInfo>> ListNexthopsAsync(byte? protocol, CancellationToken cancellationToken) =>
        Run<IReadOnlyList<NexthopInfo>>("ListNexthops", protocol, "RTM_GETNEXTHOP", () => _nexthops.Values
            .Where(n => protocol is null || n.Protocol == protocol)
            .OrderBy(n => n.Id)
            .ToList(), mutates: false);

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
                string name = op.Kind.ToString();
                _calls.Add(new FakeNetlinkOperation(name, op.Spec));
                try
                {
                    CheckFault(name, op.Spec, OperationName(op.Kind));
                    switch (op.Kind)
                    {
                        case NetlinkOperationKind.ReplaceRoute: ReplaceRouteLocked((RouteSpec)op.Spec); break;
                        case NetlinkOperationKind.DeleteRoute: DeleteRouteLocked((RouteSpec)op.Spec); break;
                        case NetlinkOperationKind.ReplaceNeighbor: ReplaceNeighborLocked((NeighborSpec)op.Spec); break;
                        case NetlinkOperationKind.DeleteNeighbor: DeleteNeighborLocked((NeighborSpec)op.Spec); break;
                        case NetlinkOperationKind.ReplaceFdbEntry: ReplaceFdbLocked((FdbEntrySpec)op.Spec); break;
                        case NetlinkOperationKind.DeleteFdbEntry: DeleteFdbLocked((FdbEntrySpec)op.Spec); break;
                        case NetlinkOperationKind.ReplaceNexthop: ReplaceNexthopLocked((NexthopSpec)op.Spec); break;
                        case NetlinkOperationKind.DeleteNexthop: DeleteNexthopLocked((uint)op.Spec); break;
                        default: throw Error(OperationName(op.Kind), Eopnotsupp, null);
                    }

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
    public ValueTask WriteSysctlAsync(string key, string value, CancellationToken cancellationToken) =>
        RunVoid("WriteSysctl", (key, value), "sysctl", () =>
        {
            string[] parts = key.Split('/');
            if (parts.Length == 5 && parts[0] == "net" && parts[2] == "conf" && parts[3] is not ("all" or "default")
                && !_links.Values.Any(l => l.Name == parts[3]))
            {
                throw new FileNotFoundException($"/proc/sys/{key} does not exist");
            }

            _sysctls[key] = value;
        });

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

    // ----- kernel semantics -----

    private static bool IsCompatible(LinkInfo existing, VxlanLinkSpec spec)
    {
        if (existing.Kind != "vxlan" || existing.Vxlan is not { } vx)
        {
            return false;
        }

        ushort wantedPort = spec.Port == 0 ? (ushort)8472 : spec.Port;
        return vx.Vni == spec.Vni
            && (spec.Local is null || vx.Local is null || vx.Local.Equals(spec.Local))
            && (spec.UnderlayIndex is null || vx.UnderlayIndex is null || vx.UnderlayIndex == spec.UnderlayIndex)
            && vx.Port == wantedPort
            && vx.Learning == spec.Learning
            && vx.Gbp == spec.Gbp
            && !vx.L2Miss;
    }

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
            Flags = 0x80, // IFA_F_PERMANENT
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
            Type = 1,
        });
    }

    /// <summary>Longest-prefix match in the main table, optionally only routes out of one link.</summary>
    private RouteInfo? Lookup(IPAddress destination, int? linkIndex) => _routes
        .Where(r => r.Table == RouteDefaults.MainTable && r.Type == 1
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
        else if (route.Type == 1)
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
            State = 0x80, // NUD_PERMANENT
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
        var info = new FdbEntryInfo { LinkIndex = entry.LinkIndex, MacAddress = entry.MacAddress, Destination = entry.Destination, State = 0x80, Flags = 0x02 };
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

    private ValueTask<T> Run<T>(string name, object? spec, string operation, Func<T> action, bool mutates = true)
    {
        lock (_sync)
        {
            _calls.Add(new FakeNetlinkOperation(name, spec));
            try
            {
                CheckFault(name, spec, operation);
                T result = action();
                if (mutates)
                {
                    Interlocked.Increment(ref _mutations);
                }

                return ValueTask.FromResult(result);
            }
            catch (Exception ex) when (ex is NetlinkException or IOException)
            {
                return ValueTask.FromException<T>(ex);
            }
        }
    }

    private ValueTask RunVoid(string name, object? spec, string operation, Action action)
    {
        ValueTask<bool> result = Run(name, spec, operation, () =>
        {
            action();
            return true;
        });
        return result.IsCompletedSuccessfully ? ValueTask.CompletedTask : new ValueTask(result.AsTask());
    }

    private void CheckFault(string name, object? spec, string operation)
    {
        var call = new FakeNetlinkOperation(name, spec);
        foreach (FaultRule rule in _faults)
        {
            if (rule.TryConsume(call))
            {
                throw Error(operation, rule.Errno, $"injected fault for {name}");
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

    private static string OperationName(NetlinkOperationKind kind) => kind switch
    {
        NetlinkOperationKind.ReplaceRoute => "RTM_NEWROUTE",
        NetlinkOperationKind.DeleteRoute => "RTM_DELROUTE",
        NetlinkOperationKind.ReplaceNeighbor or NetlinkOperationKind.ReplaceFdbEntry => "RTM_NEWNEIGH",
        NetlinkOperationKind.DeleteNeighbor or NetlinkOperationKind.DeleteFdbEntry => "RTM_DELNEIGH",
        NetlinkOperationKind.ReplaceNexthop => "RTM_NEWNEXTHOP",
        _ => "RTM_DELNEXTHOP",
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
