using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Flannel.Backends;
using Flannel.Netlink;

namespace Flannel.Agent.InterfaceSelection;

/// <summary>
/// Chooses the underlay interface and the public addresses the way flanneld does (<c>pkg/ipmatch</c> and
/// <c>main.go</c>), reading links, addresses and routes through <see cref="INetlink"/> so that it works in the
/// network namespace the netlink instance is bound to.
/// </summary>
/// <remarks>
/// Order: with no interface flag, the interface holding <c>--public-ip</c> if one is given, else the interface of
/// the default route (IPv4, IPv6, or both, which must agree). Otherwise each <c>--iface</c> value (name or address)
/// in order, then each <c>--iface-regex</c> (addresses first, then names), then <c>--iface-can-reach</c>.
/// The interface's own address is the first after sorting: global unicast before link-local, permanent before
/// dynamic, non-temporary before temporary; deprecated addresses are never used.
/// </remarks>
public sealed class ExternalInterfaceSelector
{
    private static readonly TimeSpan RegexTimeout = TimeSpan.FromSeconds(1);

    private readonly INetlink _netlink;

    /// <summary>Creates a selector reading the namespace <paramref name="netlink"/> is bound to.</summary>
    public ExternalInterfaceSelector(INetlink netlink)
    {
        ArgumentNullException.ThrowIfNull(netlink);
        _netlink = netlink;
    }

    /// <summary>Selects the external interface.</summary>
    /// <exception cref="InterfaceSelectionException">Nothing matches; the message says which flag failed and why.</exception>
    public async ValueTask<InterfaceSelectionResult> SelectAsync(InterfaceSelectionOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!options.EnableIPv4 && !options.EnableIPv6)
        {
            throw new InterfaceSelectionException("none defined stack: neither EnableIPv4 nor EnableIPv6 is set");
        }

        IReadOnlyList<LinkInfo> links = await _netlink.ListLinksAsync(cancellationToken).ConfigureAwait(false);
        IReadOnlyList<AddressInfo> addresses = await _netlink.ListAddressesAsync(null, null, cancellationToken).ConfigureAwait(false);
        var snapshot = new InterfaceSnapshot(links, addresses);

        Candidate? candidate;
        if (options.IsAutomatic)
        {
            candidate = await SelectAutomaticallyAsync(options, snapshot, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var failures = new List<string>();
            candidate = SelectByInterfaceFlags(options, snapshot, failures)
                ?? SelectByRegexes(options, snapshot, failures)
                ?? await SelectByCanReachAsync(options, snapshot, failures, cancellationToken).ConfigureAwait(false);
            if (candidate is null)
            {
                throw new InterfaceSelectionException(
                    "Failed to find interface to use that matches the interfaces and/or regexes provided ("
                    + string.Join("; ", failures) + "); available: " + snapshot.Describe(options));
            }
        }

        return Complete(candidate, options, snapshot);
    }

    private async ValueTask<Candidate> SelectAutomaticallyAsync(InterfaceSelectionOptions options, InterfaceSnapshot snapshot, CancellationToken cancellationToken)
    {
        // flanneld: with a --public-ip and no interface flag, the interface must own that address.
        if (options.PublicIP is not null)
        {
            LinkInfo owner = snapshot.FindOwner(options.PublicIP)
                ?? throw new InterfaceSelectionException(
                    $"Failed to find any valid interface to use: --public-ip {options.PublicIP} is not an address of any interface "
                    + "(give --iface to use a non-local public IP); available: " + snapshot.Describe(options));
            return new Candidate(owner, options.PublicIP, null, $"--public-ip {options.PublicIP} is held by {owner.Name}");
        }

        LinkInfo? v4Link = null;
        LinkInfo? v6Link = null;
        string? v4Route = null;
        string? v6Route = null;
        if (options.EnableIPv4)
        {
            (v4Link, v4Route) = await FindDefaultRouteLinkAsync(AddressFamily.InterNetwork, snapshot, cancellationToken).ConfigureAwait(false);
        }

        if (options.EnableIPv6)
        {
            (v6Link, v6Route) = await FindDefaultRouteLinkAsync(AddressFamily.InterNetworkV6, snapshot, cancellationToken).ConfigureAwait(false);
        }

        if (v4Link is not null && v6Link is not null && v4Link.Index != v6Link.Index)
        {
            throw new InterfaceSelectionException(
                $"v6 default route interface {v6Link.Name} must be the same with v4 default route interface {v4Link.Name}");
        }

        LinkInfo link = (v4Link ?? v6Link)!;
        string reason = v4Link is not null
            ? $"no --iface/--iface-regex/--iface-can-reach given; the IPv4 default route ({v4Route}) uses {link.Name}"
            : $"no --iface/--iface-regex/--iface-can-reach given; the IPv6 default route ({v6Route}) uses {link.Name}";
        return new Candidate(link, null, null, reason);
    }

    private async ValueTask<(LinkInfo Link, string Route)> FindDefaultRouteLinkAsync(AddressFamily family, InterfaceSnapshot snapshot, CancellationToken cancellationToken)
    {
        IReadOnlyList<RouteInfo> routes = await _netlink.ListRoutesAsync(
            new RouteFilter { Family = family, Table = RouteDefaults.MainTable }, cancellationToken).ConfigureAwait(false);
        foreach (RouteInfo route in routes)
        {
            if (route.Destination.PrefixLength != 0 || route.LinkIndex is not int index)
            {
                continue;
            }

            if (snapshot.FindLink(index) is LinkInfo link)
            {
                string text = route.Gateway is null ? $"default dev {link.Name}" : $"default via {route.Gateway} dev {link.Name}";
                return (link, text);
            }
        }

        string familyName = family == AddressFamily.InterNetwork ? "IPv4" : "IPv6";
        throw new InterfaceSelectionException(
            $"failed to get default {(family == AddressFamily.InterNetwork ? string.Empty : "v6 ")}interface: no {familyName} default route in the main table "
            + "(give --iface, --iface-regex or --iface-can-reach)");
    }

    private static Candidate? SelectByInterfaceFlags(InterfaceSelectionOptions options, InterfaceSnapshot snapshot, List<string> failures)
    {
        foreach (string spec in options.Interfaces)
        {
            string value = spec.Trim();
            if (IPAddress.TryParse(value, out IPAddress? address))
            {
                if (snapshot.FindOwner(address) is LinkInfo owner)
                {
                    bool isV4 = address.AddressFamily == AddressFamily.InterNetwork;
                    return new Candidate(owner, isV4 ? address : null, isV4 ? null : address, $"--iface={value} is an address of {owner.Name}");
                }

                failures.Add($"--iface={value}: no interface has this address");
                continue;
            }

            if (snapshot.FindLink(value) is LinkInfo named)
            {
                return new Candidate(named, null, null, $"--iface={value} names interface {named.Name} (index {named.Index})");
            }

            failures.Add($"--iface={value}: no such interface");
        }

        return null;
    }

    private static Candidate? SelectByRegexes(InterfaceSelectionOptions options, InterfaceSnapshot snapshot, List<string> failures)
    {
        foreach (string pattern in options.InterfaceRegexes)
        {
            Regex regex;
            try
            {
                regex = new Regex(pattern, RegexOptions.CultureInvariant, RegexTimeout);
            }
            catch (ArgumentException ex)
            {
                throw new InterfaceSelectionException($"could not compile the --iface-regex '{pattern}': {ex.Message}", ex);
            }

            // Addresses first (of the enabled families, in preference order), then names: flanneld's order.
            foreach (LinkInfo link in snapshot.Links)
            {
                IPAddress? v4 = options.EnableIPv4 ? MatchAddress(regex, snapshot.PreferredAddresses(link.Index, AddressFamily.InterNetwork)) : null;
                IPAddress? v6 = options.EnableIPv6 ? MatchAddress(regex, snapshot.PreferredAddresses(link.Index, AddressFamily.InterNetworkV6)) : null;
                bool matched = (options.EnableIPv4, options.EnableIPv6) switch
                {
                    (true, true) => v4 is not null && v6 is not null,
                    (true, false) => v4 is not null,
                    _ => v6 is not null,
                };
                if (matched)
                {
                    string which = string.Join(" and ", new[] { v4, v6 }.Where(a => a is not null));
                    return new Candidate(link, v4, v6, $"--iface-regex '{pattern}' matched address {which} of {link.Name}");
                }
            }

            foreach (LinkInfo link in snapshot.Links)
            {
                if (regex.IsMatch(link.Name))
                {
                    return new Candidate(link, null, null, $"--iface-regex '{pattern}' matched interface name {link.Name}");
                }
            }

            failures.Add($"--iface-regex '{pattern}' matched no address or interface name");
        }

        return null;
    }

    private async ValueTask<Candidate?> SelectByCanReachAsync(InterfaceSelectionOptions options, InterfaceSnapshot snapshot, List<string> failures, CancellationToken cancellationToken)
    {
        if (options.CanReach is not IPAddress target)
        {
            return null;
        }

        RouteInfo? route = await _netlink.GetRouteToAsync(target, cancellationToken).ConfigureAwait(false);
        if (route?.LinkIndex is not int index || snapshot.FindLink(index) is not LinkInfo link)
        {
            failures.Add($"--iface-can-reach {target}: the kernel has no route to it");
            return null;
        }

        // The route's preferred source is the address the kernel itself would use towards the target.
        IPAddress? source = route.PreferredSource;
        bool isV4 = target.AddressFamily == AddressFamily.InterNetwork;
        string via = route.Gateway is null ? "directly" : $"via {route.Gateway}";
        return new Candidate(
            link,
            isV4 ? source : null,
            isV4 ? null : source,
            $"--iface-can-reach {target}: the kernel routes it {via} through {link.Name}" + (source is null ? string.Empty : $" from {source}"));
    }

    private static IPAddress? MatchAddress(Regex regex, IEnumerable<IPAddress> addresses) =>
        addresses.FirstOrDefault(a => regex.IsMatch(a.ToString()));

    private static InterfaceSelectionResult Complete(Candidate candidate, InterfaceSelectionOptions options, InterfaceSnapshot snapshot)
    {
        LinkInfo link = candidate.Link;
        IPAddress? v4 = candidate.IPv4;
        IPAddress? v6 = candidate.IPv6;
        if (options.EnableIPv4 && v4 is null)
        {
            v4 = snapshot.PreferredAddresses(link.Index, AddressFamily.InterNetwork).FirstOrDefault()
                ?? throw new InterfaceSelectionException($"failed to find IPv4 address for interface {link.Name}");
        }

        if (options.EnableIPv6 && v6 is null)
        {
            v6 = snapshot.PreferredAddresses(link.Index, AddressFamily.InterNetworkV6).FirstOrDefault()
                ?? throw new InterfaceSelectionException($"failed to find IPv6 address for interface {link.Name}");
        }

        if (link.Mtu <= 0)
        {
            throw new InterfaceSelectionException($"failed to determine MTU for {link.Name} interface");
        }

        IPAddress? publicV4 = options.EnableIPv4 ? options.PublicIP ?? v4 : options.PublicIP;
        IPAddress? publicV6 = options.EnableIPv6 ? options.PublicIPv6 ?? v6 : options.PublicIPv6;
        var external = new ExternalInterface
        {
            Name = link.Name,
            Index = link.Index,
            Mtu = link.Mtu,
            IfaceAddress = v4,
            IfaceIPv6Address = v6,
            PublicIP = publicV4,
            PublicIPv6 = publicV6,
        };

        string reason = candidate.Reason;
        if (options.PublicIP is not null && !options.PublicIP.Equals(v4))
        {
            reason += string.Create(CultureInfo.InvariantCulture, $"; public IP {options.PublicIP} from --public-ip (interface address {v4})");
        }

        return new InterfaceSelectionResult(external, reason);
    }

    private sealed record Candidate(LinkInfo Link, IPAddress? IPv4, IPAddress? IPv6, string Reason);

    private sealed class InterfaceSnapshot(IReadOnlyList<LinkInfo> links, IReadOnlyList<AddressInfo> addresses)
    {
        public IReadOnlyList<LinkInfo> Links { get; } = links;

        public LinkInfo? FindLink(int index) => Links.FirstOrDefault(l => l.Index == index);

        public LinkInfo? FindLink(string name) => Links.FirstOrDefault(l => string.Equals(l.Name, name, StringComparison.Ordinal));

        public LinkInfo? FindOwner(IPAddress address)
        {
            AddressInfo? owner = addresses.FirstOrDefault(a => a.Local.Equals(address));
            return owner is null ? null : FindLink(owner.LinkIndex);
        }

        /// <summary>Usable addresses of one family on a link, best first.</summary>
        public IEnumerable<IPAddress> PreferredAddresses(int linkIndex, AddressFamily family) =>
            addresses
                .Where(a => a.LinkIndex == linkIndex && a.Local.AddressFamily == family)
                .Where(a => (a.Flags & AddressFlags.Deprecated) == 0)
                .Where(a => IsGlobalUnicast(a.Local) || IsLinkLocalUnicast(a.Local))
                .OrderBy(a => IsLinkLocalUnicast(a.Local) ? 1 : 0)
                .ThenBy(a => (a.Flags & AddressFlags.Permanent) != 0 ? 0 : 1)
                .ThenBy(a => (a.Flags & AddressFlags.Temporary) != 0 ? 1 : 0)
                .Select(a => a.Local);

        public string Describe(InterfaceSelectionOptions options)
        {
            AddressFamily family = options.EnableIPv4 ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6;
            return string.Join(", ", Links.Select(l => $"{l.Name}:[{string.Join(' ', PreferredAddresses(l.Index, family))}]"));
        }

        private static bool IsLinkLocalUnicast(IPAddress address)
        {
            if (address.AddressFamily == AddressFamily.InterNetworkV6)
            {
                return address.IsIPv6LinkLocal;
            }

            Span<byte> bytes = stackalloc byte[4];
            address.TryWriteBytes(bytes, out _);
            return bytes[0] == 169 && bytes[1] == 254;
        }

        // Go's net.IP.IsGlobalUnicast: not unspecified, loopback, multicast, link-local or the limited broadcast.
        private static bool IsGlobalUnicast(IPAddress address)
        {
            if (IPAddress.IsLoopback(address) || IsLinkLocalUnicast(address))
            {
                return false;
            }

            if (address.AddressFamily == AddressFamily.InterNetworkV6)
            {
                return !address.Equals(IPAddress.IPv6Any) && !address.IsIPv6Multicast;
            }

            Span<byte> bytes = stackalloc byte[4];
            address.TryWriteBytes(bytes, out _);
            bool unspecified = bytes[0] == 0 && bytes[1] == 0 && bytes[2] == 0 && bytes[3] == 0;
            bool broadcast = bytes[0] == 255 && bytes[1] == 255 && bytes[2] == 255 && bytes[3] == 255;
            bool multicast = bytes[0] >= 224 && bytes[0] <= 239;
            return !unspecified && !broadcast && !multicast;
        }
    }
}
