using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Flannel.Agent.Probing;
using Flannel.Netlink;
using Flannel.Subnets;

namespace Flannel.Agent.Doctor;

/// <summary>How a UDP probe of a peer's vxlan port ended.</summary>
internal enum UdpProbeOutcome
{
    /// <summary>Nothing came back: a vxlan socket swallowed it (healthy), or a filter dropped it.</summary>
    NoAnswer,

    /// <summary>ICMP port unreachable: nothing listens on the port at the peer.</summary>
    PortUnreachable,

    /// <summary>ICMP host/network unreachable or administratively prohibited: a router or firewall refused it.</summary>
    Rejected,

    /// <summary>The local kernel refused to send it.</summary>
    SendFailed,
}

/// <summary>Sends one UDP datagram to a port and reports the ICMP error it provokes, if any.</summary>
internal interface IUdpPortProbe
{
    Task<(UdpProbeOutcome Outcome, string Detail)> ProbeAsync(IPAddress? source, IPEndPoint destination, uint vni, TimeSpan timeout, CancellationToken cancellationToken);
}

/// <summary>
/// The real UDP probe: a connected UDP socket (from the vxlan device's local address) sends one VXLAN header with no
/// inner frame, which a peer's vxlan device drops silently; a closed port answers with ICMP port unreachable, which
/// Linux reports on a connected socket as ECONNREFUSED, and a rejecting firewall as EHOSTUNREACH.
/// </summary>
internal sealed class UdpPortProbe : IUdpPortProbe
{
    public static UdpPortProbe Instance { get; } = new();

    public async Task<(UdpProbeOutcome Outcome, string Detail)> ProbeAsync(IPAddress? source, IPEndPoint destination, uint vni, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var socket = new Socket(destination.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        byte[] header = new byte[8];
        header[0] = 0x08; // VXLAN flags: I (a valid VNI follows)
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), vni << 8);
        try
        {
            if (source is not null)
            {
                socket.Bind(new IPEndPoint(source, 0));
            }

            await socket.ConnectAsync(destination, cancellationToken).ConfigureAwait(false);
            await socket.SendAsync(header, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            wait.CancelAfter(timeout);
            byte[] buffer = new byte[64];
            await socket.ReceiveAsync(buffer, SocketFlags.None, wait.Token).ConfigureAwait(false);
            return (UdpProbeOutcome.NoAnswer, "an unexpected UDP answer");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (UdpProbeOutcome.NoAnswer, $"no ICMP error within {timeout.TotalSeconds:0.#} s");
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return (UdpProbeOutcome.PortUnreachable, "ICMP port unreachable (ECONNREFUSED)");
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.AccessDenied)
        {
            return (UdpProbeOutcome.Rejected, $"ICMP {(e.SocketErrorCode == SocketError.NetworkUnreachable ? "network" : "host")} unreachable or administratively prohibited ({e.Message})");
        }
        catch (SocketException e)
        {
            return (UdpProbeOutcome.SendFailed, e.Message);
        }
    }
}

/// <summary>
/// The vxlan port check: for a sample of peers, ICMP over the underlay and over the overlay, and a UDP probe of the
/// vxlan port with its ICMP port-unreachable check. Tells apart a filtered port, a peer with nothing listening, a
/// rejecting firewall and a peer that is down, and names the pair of nodes.
/// </summary>
internal static class VxlanPortCheck
{
    public static async Task<IReadOnlyList<DoctorFinding>> RunAsync(
        DoctorFacts facts, IEchoProber echo, IUdpPortProbe udp, int sampleSize, TimeSpan timeout, CancellationToken cancellationToken)
    {
        LinkInfo? device = facts.Kernel.FlannelVxlanDevices.FirstOrDefault(d => !d.Name.StartsWith("flannel-v6", StringComparison.Ordinal));
        if (device?.Vxlan is not { } vxlan)
        {
            return [new DoctorFinding(DoctorChecks.VxlanPort, FindingSeverity.Info, "no flannel vxlan device on this node: the vxlan port check does not apply", [], [])];
        }

        Lease? own = facts.OwnLease;
        IPAddress? overlaySource = own?.Subnet?.BaseAddress;
        IPAddress? underlaySource = vxlan.Local;
        int port = vxlan.Port == 0 ? 8472 : vxlan.Port;
        Lease[] peers = [.. facts.RemoteLeases.Where(l => l.Subnet is not null && !l.Attributes.PublicIP.Equals(IPAddress.Any)).OrderBy(l => l.Key, StringComparer.Ordinal)];
        if (peers.Length == 0)
        {
            return [DoctorFinding.Pass(DoctorChecks.VxlanPort, "no remote peers to probe")];
        }

        Lease[] sample = peers.Length <= sampleSize ? peers : [.. peers.OrderBy(_ => Random.Shared.Next()).Take(sampleSize).OrderBy(l => l.Key, StringComparer.Ordinal)];
        (Lease Peer, EchoResult Overlay, EchoResult Underlay, (UdpProbeOutcome Outcome, string Detail) Udp)[] results = await Task.WhenAll(sample.Select(async peer =>
        {
            IPAddress overlayTarget = peer.Subnet!.Value.BaseAddress;
            Task<EchoResult> overlay = overlaySource is null
                ? Task.FromResult(new EchoResult(EchoOutcome.SendFailed, TimeSpan.Zero, "this node's lease is unknown"))
                : echo.EchoAsync(overlayTarget, overlaySource, timeout, cancellationToken).AsTask();
            Task<EchoResult> underlay = echo.EchoAsync(peer.Attributes.PublicIP, underlaySource, timeout, cancellationToken).AsTask();
            Task<(UdpProbeOutcome, string)> probe = udp.ProbeAsync(underlaySource, new IPEndPoint(peer.Attributes.PublicIP, port), vxlan.Vni, timeout, cancellationToken);
            return (peer, await overlay.ConfigureAwait(false), await underlay.ConfigureAwait(false), await probe.ConfigureAwait(false));
        })).ConfigureAwait(false);

        var findings = new List<DoctorFinding>();
        string us = underlaySource?.ToString() ?? "this node";
        foreach ((Lease peer, EchoResult overlay, EchoResult underlay, (UdpProbeOutcome outcome, string detail)) in results)
        {
            if (overlay.Succeeded)
            {
                continue;
            }

            string them = $"{peer.Attributes.PublicIP} (lease {peer.Key})";
            string[] evidence =
            [
                $"ICMP {overlaySource?.ToString() ?? "?"} -> {peer.Subnet!.Value.BaseAddress} over {device.Name}: {overlay}",
                $"ICMP {us} -> {peer.Attributes.PublicIP} over the underlay: {underlay}",
                $"UDP {us} -> {peer.Attributes.PublicIP}:{port}: {detail}",
            ];
            findings.Add((outcome, underlay.Succeeded) switch
            {
                (UdpProbeOutcome.PortUnreachable, _) => new DoctorFinding(DoctorChecks.VxlanPort, FindingSeverity.Error,
                    $"nothing listens on UDP {port} at {them}: its vxlan device is missing, down, or uses another port",
                    evidence,
                    [$"on {peer.Attributes.PublicIP}: " + DoctorChecks.Command("ip", "-d", "link", "show", device.Name) + " (expect dstport " + port + "), and restart flanneld there"]),
                (UdpProbeOutcome.Rejected, _) => new DoctorFinding(DoctorChecks.VxlanPort, FindingSeverity.Error,
                    $"UDP {port} from {us} to {them} is rejected by a firewall or router",
                    evidence,
                    AllowVxlanFix(us, peer.Attributes.PublicIP.ToString(), port)),
                (_, false) => new DoctorFinding(DoctorChecks.VxlanPort, FindingSeverity.Error,
                    $"{them} answers neither over the overlay nor over the underlay: the node is down, or all traffic to it is filtered",
                    evidence,
                    [DoctorChecks.Command("ip", "route", "get", peer.Attributes.PublicIP.ToString()) + "   (is the route right?)", "check that the node is up and that ICMP and UDP " + port + " reach it"]),
                _ => new DoctorFinding(DoctorChecks.VxlanPort, FindingSeverity.Error,
                    $"UDP {port} between {us} and {them} appears filtered: the underlay answers ICMP, the overlay does not, and no ICMP port-unreachable came back",
                    evidence,
                    AllowVxlanFix(us, peer.Attributes.PublicIP.ToString(), port)),
            });
        }

        string sampled = sample.Length == peers.Length ? $"all {peers.Length} peers" : $"{sample.Length} of {peers.Length} peers (a random sample)";
        if (findings.Count == 0)
        {
            findings.Add(DoctorFinding.Pass(DoctorChecks.VxlanPort, $"UDP {port} works to {sampled}: each answered over the overlay"));
        }
        else
        {
            findings.Add(new DoctorFinding(DoctorChecks.VxlanPort, FindingSeverity.Info, $"probed {sampled}; {results.Length - (findings.Count)} answered over the overlay", [], []));
        }

        return findings;
    }

    private static string[] AllowVxlanFix(string us, string them, int port) =>
    [
        $"allow UDP {port} both ways between {us} and {them}, in every firewall between them (security groups, host firewalls); on each node, e.g.:",
        DoctorChecks.Command("iptables", "-I", "INPUT", "-p", "udp", "--dport", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-s", them, "-j", "ACCEPT") + "   (on " + us + ")",
        DoctorChecks.Command("iptables", "-I", "INPUT", "-p", "udp", "--dport", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-s", us, "-j", "ACCEPT") + "   (on " + them + ")",
    ];
}
