using System.Globalization;
using System.Text.Json;
using Flannel.Agent.Traffic;
using Flannel.Netlink;
using Flannel.Subnets;

namespace Flannel.Agent.Doctor;

/// <summary>One WireGuard device as <c>wg show DEV dump</c> reports it (the same for kernel WireGuard and wireguard-go).</summary>
/// <param name="ListenPort">The UDP port it listens on.</param>
/// <param name="Peers">Its peers: public key, endpoint and allowed IPs as wg prints them.</param>
internal sealed record WireGuardDump(int ListenPort, IReadOnlyList<(string PublicKey, string Endpoint, string AllowedIps)> Peers)
{
    /// <summary>
    /// Parses <c>wg show DEV dump</c>: a first line <c>private-key public-key listen-port fwmark</c>, then one line per
    /// peer <c>public-key preshared-key endpoint allowed-ips latest-handshake rx tx keepalive</c>, tab-separated.
    /// </summary>
    /// <returns>The dump, or null when the text is not in that form.</returns>
    public static WireGuardDump? Parse(string text)
    {
        string[] lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length == 0)
        {
            return null;
        }

        string[] device = lines[0].Split('\t');
        if (device.Length < 3 || !int.TryParse(device[2], NumberStyles.None, CultureInfo.InvariantCulture, out int port))
        {
            return null;
        }

        var peers = new List<(string, string, string)>();
        foreach (string line in lines.Skip(1))
        {
            string[] fields = line.Split('\t');
            if (fields.Length < 4)
            {
                return null;
            }

            peers.Add((fields[0], fields[2], fields[3]));
        }

        return new WireGuardDump(port, peers);
    }

    /// <summary>Runs <c>wg show DEV dump</c> for every flannel WireGuard device; a device wg cannot read maps to null.</summary>
    public static async Task<IReadOnlyDictionary<string, string?>> ReadAsync(IEnumerable<string> devices, ICommandRunner runner, CancellationToken cancellationToken)
    {
        var dumps = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (string device in devices)
        {
            try
            {
                CommandResult result = await runner.RunAsync("wg", ["show", device, "dump"], null, cancellationToken).ConfigureAwait(false);
                dumps[device] = result.Succeeded ? result.StandardOutput : null;
            }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException or IOException)
            {
                dumps[device] = null; // wireguard-tools not installed
            }
        }

        return dumps;
    }
}

/// <summary>
/// The wireguard checks of <c>flanneld doctor</c>: each flannel WireGuard device present and up, its MTU (underlay
/// less 80, as flannel sets it, and subnet.env's FLANNEL_MTU), its listen port against this node's lease, and its peers
/// against the leases: a peer no lease publishes, a lease without its peer.
/// </summary>
internal static class WireGuardChecks
{
    public const string Check = "wireguard";

    /// <summary>WireGuard's overhead flannel subtracts from the underlay MTU: IPv6 header 40 + UDP 8 + WireGuard 32.</summary>
    private const int Overhead = 80;

    /// <summary>The names of the flannel WireGuard devices flannel uses.</summary>
    public static readonly string[] DeviceNames = ["flannel-wg", "flannel-wg-v6"];

    public static IEnumerable<DoctorFinding> Findings(DoctorFacts facts)
    {
        if (facts.Leases.BackendType != "wireguard" && !DeviceNames.Any(n => facts.Kernel.Link(n) is not null))
        {
            return [];
        }

        var findings = new List<DoctorFinding>();
        Lease? own = facts.OwnLease;
        string[] expected = own?.IPv6Subnet is not null && facts.Kernel.Link("flannel-wg-v6") is not null ? DeviceNames : [DeviceNames[0]];
        foreach (string name in expected)
        {
            LinkInfo? link = facts.Kernel.Link(name);
            if (link is null)
            {
                findings.Add(new DoctorFinding(Check, FindingSeverity.Error,
                    $"{name} does not exist: no pod traffic leaves this node over WireGuard",
                    ["ip link: no link named " + name],
                    ["restart flanneld: it recreates the device (kernel WireGuard, else wireguard-go) and replays every peer"]));
                continue;
            }

            if (!link.IsUp)
            {
                findings.Add(new DoctorFinding(Check, FindingSeverity.Error, $"{name} is down", [$"ip link: {name} state DOWN"],
                    [DoctorChecks.Command("ip", "link", "set", "dev", name, "up")]));
            }

            MtuFindings(facts, link, findings);
            if (!facts.WireGuardDumps.TryGetValue(name, out string? text) || text is null || WireGuardDump.Parse(text) is not { } dump)
            {
                findings.Add(new DoctorFinding(Check, FindingSeverity.Warning,
                    $"cannot read {name}'s peers with `wg show {name} dump`",
                    [text is null ? "wg failed or is not installed" : "wg printed an unexpected format"],
                    ["install wireguard-tools; with wireguard-go, run doctor where its UAPI socket (/var/run/wireguard) is visible"]));
                continue;
            }

            PortFindings(own, name, dump, findings);
            PeerFindings(facts, name, dump, findings);
        }

        return findings;
    }

    private static void MtuFindings(DoctorFacts facts, LinkInfo device, List<DoctorFinding> findings)
    {
        LinkInfo? underlay = Underlay(facts);
        int? want = facts.Leases.BackendMtuOverride is > 0 and var over ? over - Overhead : underlay is not null ? underlay.Mtu - Overhead : null;
        var evidence = new List<string> { $"ip link: {device.Name} mtu {device.Mtu}" };
        if (underlay is not null)
        {
            evidence.Add($"ip link: {underlay.Name} mtu {underlay.Mtu} (WireGuard adds up to {Overhead} bytes)");
        }

        int? env = facts.SubnetEnv.Mtu;
        if (env is { } e)
        {
            evidence.Add($"{facts.SubnetFile}: FLANNEL_MTU={e}");
        }

        int before = findings.Count;
        if (want is { } mtu && device.Mtu != mtu)
        {
            findings.Add(new DoctorFinding(Check, device.Mtu > mtu ? FindingSeverity.Error : FindingSeverity.Warning,
                $"{device.Name} MTU is {device.Mtu}, not {mtu} (the underlay's MTU less WireGuard's {Overhead} bytes, as flannel sets it)",
                evidence,
                [DoctorChecks.Command("ip", "link", "set", "dev", device.Name, "mtu", mtu.ToString(CultureInfo.InvariantCulture))]));
        }

        if (device.Name == DeviceNames[0] && env is { } fileMtu && fileMtu != device.Mtu)
        {
            findings.Add(new DoctorFinding(Check, FindingSeverity.Error,
                $"subnet.env FLANNEL_MTU={fileMtu} differs from {device.Mtu}, {device.Name}'s MTU: pods are created with the wrong MTU",
                evidence,
                ["restart flanneld so that it rewrites subnet.env, then recreate the pods"]));
        }

        if (findings.Count == before)
        {
            findings.Add(DoctorFinding.Pass(Check, $"{device.Name} is up, MTU {device.Mtu}{(want is null ? string.Empty : $" = underlay - {Overhead}")}{(env is { } m ? $"; subnet.env FLANNEL_MTU={m}" : string.Empty)}"));
        }
    }

    private static void PortFindings(Lease? own, string device, WireGuardDump dump, List<DoctorFinding> findings)
    {
        string? data = device == DeviceNames[1] ? own?.Attributes.BackendV6Data ?? own?.Attributes.BackendData : own?.Attributes.BackendData;
        if (KeyAndPort(data) is not { Port: > 0 } published)
        {
            return;
        }

        if (published.Port != dump.ListenPort)
        {
            findings.Add(new DoctorFinding(Check, FindingSeverity.Error,
                $"{device} listens on UDP {dump.ListenPort} but this node's lease tells peers to send to {published.Port}",
                [$"wg show {device} dump: listen-port {dump.ListenPort}", $"lease {own!.Key}: Port {published.Port}"],
                [DoctorChecks.Command("wg", "set", device, "listen-port", published.Port.ToString(CultureInfo.InvariantCulture))]));
        }
        else
        {
            findings.Add(DoctorFinding.Pass(Check, $"{device} listens on UDP {dump.ListenPort}, the port its lease publishes"));
        }
    }

    private static void PeerFindings(DoctorFacts facts, string device, WireGuardDump dump, List<DoctorFinding> findings)
    {
        bool v6Device = device == DeviceNames[1];
        var leaseByKey = new Dictionary<string, Lease>(StringComparer.Ordinal);
        foreach (Lease lease in facts.RemoteLeases.Where(l => l.Attributes.BackendType is null or "wireguard"))
        {
            string? data = v6Device ? lease.Attributes.BackendV6Data : lease.Attributes.BackendData ?? lease.Attributes.BackendV6Data;
            if (KeyAndPort(data) is { } published)
            {
                leaseByKey.TryAdd(published.Key, lease);
            }
        }

        int before = findings.Count;
        var peerKeys = dump.Peers.Select(p => p.PublicKey).ToHashSet(StringComparer.Ordinal);
        foreach ((string key, string endpoint, string allowed) in dump.Peers.Where(p => !leaseByKey.ContainsKey(p.PublicKey)))
        {
            findings.Add(new DoctorFinding(Check, FindingSeverity.Warning,
                $"{device} has peer {key} that no lease publishes: traffic for {allowed} goes to {endpoint}",
                [$"wg show {device} dump: peer {key} endpoint {endpoint} allowed-ips {allowed}", $"{leaseByKey.Count} remote wireguard lease(s), none with this PublicKey"],
                [DoctorChecks.Command("wg", "set", device, "peer", key, "remove")]));
        }

        foreach ((string key, Lease lease) in leaseByKey.Where(p => !peerKeys.Contains(p.Key)))
        {
            string? data = v6Device ? lease.Attributes.BackendV6Data : lease.Attributes.BackendData;
            int port = KeyAndPort(data)?.Port is > 0 and var p ? p : dump.ListenPort;
            string endpoint = v6Device ? $"[{lease.Attributes.PublicIPv6}]:{port}" : $"{lease.Attributes.PublicIP}:{port}";
            string allowed = (v6Device ? lease.IPv6Subnet : lease.Subnet)?.ToString() ?? "(none)";
            findings.Add(new DoctorFinding(Check, FindingSeverity.Error,
                $"lease {lease.Key} has no peer on {device}: pods on this node cannot reach {allowed}",
                [$"lease {lease.Key}: PublicKey {key}, PublicIP {lease.Attributes.PublicIP}", $"wg show {device} dump: no peer {key}"],
                [
                    "flanneld status (the peer's kernel state says why the agent has not programmed it)",
                    DoctorChecks.Command("wg", "set", device, "peer", key, "endpoint", endpoint, "allowed-ips", allowed),
                ]));
        }

        if (findings.Count == before)
        {
            findings.Add(DoctorFinding.Pass(Check, $"{device} has exactly one peer per remote wireguard lease ({dump.Peers.Count})"));
        }
    }

    /// <summary>The PublicKey and Port of wireguard backend data (<c>{"PublicKey":"…","Port":51820}</c>), or null.</summary>
    private static (string Key, int Port)? KeyAndPort(string? data)
    {
        if (string.IsNullOrWhiteSpace(data))
        {
            return null;
        }

        try
        {
            using JsonDocument document = JsonDocument.Parse(data);
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("PublicKey", out JsonElement key) || key.ValueKind != JsonValueKind.String)
            {
                return null;
            }

            int port = root.TryGetProperty("Port", out JsonElement p) && p.ValueKind == JsonValueKind.Number && p.TryGetInt32(out int value) ? value : 0;
            return (key.GetString()!, port);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The link holding this node's public IP: the interface WireGuard sends through.</summary>
    private static LinkInfo? Underlay(DoctorFacts facts)
    {
        System.Net.IPAddress? publicIP = facts.OwnLease?.Attributes.PublicIP;
        return publicIP is null ? null : facts.Kernel.Link(facts.Kernel.Addresses.FirstOrDefault(a => a.Local.Equals(publicIP))?.LinkIndex);
    }
}
