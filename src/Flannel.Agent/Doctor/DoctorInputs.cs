using System.Globalization;
using System.Net;
using System.Text.Json;
using Flannel.Agent.Status;
using Flannel.Netlink;
using Flannel.SubnetEnv;
using Flannel.Subnets;
using Flannel.Agent.Traffic;

namespace Flannel.Agent.Doctor;

/// <summary>
/// What the doctor knows about the cluster: the leases and the network's settings, from the agent's status socket
/// (when an agent runs) or straight from the subnet store (when none does).
/// </summary>
public sealed record DoctorLeases
{
    /// <summary>Where they came from, for the report (e.g. <c>the agent's status socket /run/flannel/flannel.sock</c>).</summary>
    public required string Source { get; init; }

    /// <summary>The node's name, when known.</summary>
    public string? NodeName { get; init; }

    /// <summary>The network (net-conf.json <c>Network</c>).</summary>
    public IPNetwork? Network { get; init; }

    /// <summary>The backend type (<c>vxlan</c>, <c>host-gw</c>, …).</summary>
    public string? BackendType { get; init; }

    /// <summary>The MTU the agent computed for pods (what it wrote as FLANNEL_MTU), when an agent reported it.</summary>
    public int? AgentMtu { get; init; }

    /// <summary>net-conf.json's <c>Backend.MTU</c> override of the underlay MTU (0: none), when the store was read.</summary>
    public int? BackendMtuOverride { get; init; }

    /// <summary>This node's lease, when known (the agent reports it; from the store it is found by address).</summary>
    public Lease? OwnLease { get; init; }

    /// <summary>Every lease in the network, this node's included.</summary>
    public required IReadOnlyList<Lease> Leases { get; init; }

    /// <summary>The command that deletes a lease from the store, given its key (etcd mode), or null.</summary>
    public Func<string, string>? DeleteLeaseCommand { get; init; }

    /// <summary>Builds the inputs from an agent's status document.</summary>
    public static DoctorLeases FromStatus(FabricStatus status, string socketPath)
    {
        ArgumentNullException.ThrowIfNull(status);
        Lease? own = status.Node.Lease is { } ownLease ? ToLease(ownLease) : null;
        var leases = new List<Lease>();
        if (own is not null)
        {
            leases.Add(own);
        }

        foreach (PeerStatus peer in status.Peers)
        {
            if (ToLease(peer.Lease) is { } lease)
            {
                leases.Add(lease);
            }
        }

        return new DoctorLeases
        {
            Source = $"the agent's status socket {socketPath}",
            NodeName = status.Node.Name,
            Network = status.Node.Network is { } network && IPNetwork.TryParse(network, out IPNetwork parsed) ? parsed : null,
            BackendType = status.Node.Backend,
            AgentMtu = status.Node.Mtu,
            OwnLease = own,
            Leases = leases,
        };
    }

    private static Lease? ToLease(LeaseStatus status)
    {
        IPNetwork? subnet = status.Subnet is { } s && IPNetwork.TryParse(s, out IPNetwork v4) ? v4 : null;
        IPNetwork? subnet6 = status.IPv6Subnet is { } s6 && IPNetwork.TryParse(s6, out IPNetwork v6) ? v6 : null;
        if (subnet is null && subnet6 is null)
        {
            return null;
        }

        return new Lease
        {
            Subnet = subnet,
            IPv6Subnet = subnet6,
            Expiration = status.Expiration,
            Attributes = new LeaseAttributes
            {
                PublicIP = status.PublicIP is { } ip && IPAddress.TryParse(ip, out IPAddress? a) ? a : IPAddress.Any,
                PublicIPv6 = status.PublicIPv6 is { } ip6 && IPAddress.TryParse(ip6, out IPAddress? b) ? b : null,
                BackendType = status.BackendType,
                BackendData = status.BackendData?.GetRawText(),
            },
        };
    }

    /// <summary>The VtepMAC in a lease's vxlan backend data, or null when absent or malformed.</summary>
    internal static MacAddress? VtepMacOf(Lease lease)
    {
        string? data = lease.Attributes.BackendData;
        if (string.IsNullOrWhiteSpace(data))
        {
            return null;
        }

        try
        {
            using JsonDocument document = JsonDocument.Parse(data);
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                foreach (JsonProperty property in document.RootElement.EnumerateObject())
                {
                    if (string.Equals(property.Name, "VtepMAC", StringComparison.OrdinalIgnoreCase)
                        && property.Value.ValueKind == JsonValueKind.String
                        && MacAddress.TryParse(property.Value.GetString(), out MacAddress mac))
                    {
                        return mac;
                    }
                }
            }
        }
        catch (JsonException)
        {
        }

        return null;
    }
}

/// <summary>What the kernel of this node holds, read once through netlink.</summary>
internal sealed record KernelFacts
{
    public required IReadOnlyList<LinkInfo> Links { get; init; }

    public required IReadOnlyList<AddressInfo> Addresses { get; init; }

    /// <summary>The main table's routes (both families).</summary>
    public required IReadOnlyList<RouteInfo> Routes { get; init; }

    /// <summary>Neighbours of each flannel device, by link index.</summary>
    public required IReadOnlyDictionary<int, IReadOnlyList<NeighborInfo>> Neighbors { get; init; }

    /// <summary>FDB entries of each flannel device, by link index.</summary>
    public required IReadOnlyDictionary<int, IReadOnlyList<FdbEntryInfo>> Fdb { get; init; }

    public LinkInfo? Link(int? index) => index is { } i ? Links.FirstOrDefault(l => l.Index == i) : null;

    public LinkInfo? Link(string name) => Links.FirstOrDefault(l => l.Name == name);

    /// <summary>The flannel vxlan devices: <c>flannel.&lt;VNI&gt;</c> and <c>flannel-v6.&lt;VNI&gt;</c>.</summary>
    public IEnumerable<LinkInfo> FlannelVxlanDevices => Links.Where(l => l.Vxlan is not null && l.Name.StartsWith("flannel", StringComparison.Ordinal));

    /// <summary>Reads the links, addresses, main-table routes, and the flannel devices' neighbours and FDB entries.</summary>
    public static async Task<KernelFacts> ReadAsync(INetlink netlink, CancellationToken cancellationToken)
    {
        IReadOnlyList<LinkInfo> links = await netlink.ListLinksAsync(cancellationToken).ConfigureAwait(false);
        IReadOnlyList<AddressInfo> addresses = await netlink.ListAddressesAsync(null, null, cancellationToken).ConfigureAwait(false);
        IReadOnlyList<RouteInfo> routes = await netlink.ListRoutesAsync(new RouteFilter { Table = RouteDefaults.MainTable }, cancellationToken).ConfigureAwait(false);
        var neighbors = new Dictionary<int, IReadOnlyList<NeighborInfo>>();
        var fdb = new Dictionary<int, IReadOnlyList<FdbEntryInfo>>();
        foreach (LinkInfo link in links.Where(l => l.Vxlan is not null && l.Name.StartsWith("flannel", StringComparison.Ordinal)))
        {
            neighbors[link.Index] = await netlink.ListNeighborsAsync(link.Index, null, cancellationToken).ConfigureAwait(false);
            fdb[link.Index] = await netlink.ListFdbEntriesAsync(link.Index, cancellationToken).ConfigureAwait(false);
        }

        return new KernelFacts { Links = links, Addresses = addresses, Routes = routes, Neighbors = neighbors, Fdb = fdb };
    }
}

/// <summary>What the firewall of this node holds, from iptables and nft (run without a shell).</summary>
internal sealed record FirewallFacts
{
    /// <summary><c>iptables -t filter -S FORWARD</c>, or null when iptables is missing or failed.</summary>
    public string? IptablesForward { get; init; }

    /// <summary><c>iptables -t filter -S FLANNEL-FWD</c>, or null when the chain does not exist.</summary>
    public string? IptablesFlannelForward { get; init; }

    /// <summary>True when flannel's iptables masquerade chain (nat FLANNEL-POSTRTG) exists.</summary>
    public bool IptablesMasquerade { get; init; }

    /// <summary><c>nft list ruleset</c>, or null when nft is missing or failed.</summary>
    public string? NftRuleset { get; init; }

    public static async Task<FirewallFacts> ReadAsync(ICommandRunner runner, CancellationToken cancellationToken)
    {
        async Task<string?> OutputAsync(string program, params string[] arguments)
        {
            try
            {
                CommandResult result = await runner.RunAsync(program, arguments, null, cancellationToken).ConfigureAwait(false);
                return result.Succeeded ? result.StandardOutput : null;
            }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException or IOException)
            {
                return null; // not installed
            }
        }

        return new FirewallFacts
        {
            IptablesForward = await OutputAsync("iptables", "-w", "5", "-t", "filter", "-S", "FORWARD").ConfigureAwait(false),
            IptablesFlannelForward = await OutputAsync("iptables", "-w", "5", "-t", "filter", "-S", "FLANNEL-FWD").ConfigureAwait(false),
            IptablesMasquerade = await OutputAsync("iptables", "-w", "5", "-t", "nat", "-S", "FLANNEL-POSTRTG").ConfigureAwait(false) is not null,
            NftRuleset = await OutputAsync("nft", "list", "ruleset").ConfigureAwait(false),
        };
    }
}

/// <summary>Reads sysctls of the current network namespace from /proc/sys.</summary>
internal static class Sysctl
{
    /// <summary>The value of <c>/proc/sys/&lt;path&gt;</c> (path with slashes, e.g. <c>net/ipv4/conf/flannel.1/rp_filter</c>), or null when absent.</summary>
    public static string? Read(string path)
    {
        try
        {
            return File.ReadAllText(Path.Combine("/proc/sys", path)).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>An integer sysctl, or null when absent or not a number.</summary>
    public static int? ReadInt(Func<string, string?> read, string path) =>
        int.TryParse(read(path), NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) ? value : null;
}

/// <summary>Everything the checks look at, gathered once.</summary>
internal sealed record DoctorFacts
{
    public required DoctorLeases Leases { get; init; }

    public required KernelFacts Kernel { get; init; }

    public required FirewallFacts Firewall { get; init; }

    public required SubnetEnvReadResult SubnetEnv { get; init; }

    public required string SubnetFile { get; init; }

    /// <summary>Reads a sysctl by its /proc/sys path (slashes); null when absent.</summary>
    public required Func<string, string?> Sysctl { get; init; }

    /// <summary><c>wg show DEV dump</c> of each flannel WireGuard device (null when wg could not read it); empty for other backends.</summary>
    public IReadOnlyDictionary<string, string?> WireGuardDumps { get; init; } = new Dictionary<string, string?>();

    /// <summary>This node's lease: as reported, else the one whose subnet's first address is on a flannel device,
    /// else the one whose public IP is local, else the one subnet.env names.</summary>
    public Lease? OwnLease
    {
        get
        {
            if (Leases.OwnLease is { } reported)
            {
                return reported;
            }

            var local = Kernel.Addresses.Select(a => a.Local).ToHashSet();
            return Leases.Leases.FirstOrDefault(l => l.Subnet is { } s && local.Contains(s.BaseAddress))
                ?? Leases.Leases.FirstOrDefault(l => local.Contains(l.Attributes.PublicIP))
                ?? Leases.Leases.FirstOrDefault(l => SubnetEnv.Subnet is { } env && l.Subnet is { } s && s.Contains(env.BaseAddress));
        }
    }

    public IEnumerable<Lease> RemoteLeases
    {
        get
        {
            Lease? own = OwnLease;
            return Leases.Leases.Where(l => own is null || l.Key != own.Key);
        }
    }
}
