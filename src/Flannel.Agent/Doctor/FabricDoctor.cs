using Flannel.Agent.Probing;
using Flannel.Netlink;
using Flannel.SubnetEnv;
using Flannel.Agent.Traffic;

namespace Flannel.Agent.Doctor;

/// <summary>Settings of one doctor run.</summary>
public sealed class DoctorOptions
{
    /// <summary>The subnet.env to check. Default <c>/run/flannel/subnet.env</c>.</summary>
    public string SubnetFile { get; set; } = SubnetEnvFile.DefaultPath;

    /// <summary>Probe the vxlan port of a sample of peers (needs CAP_NET_RAW). Default true.</summary>
    public bool Probe { get; set; } = true;

    /// <summary>How many peers the vxlan port check probes at most. Default 8.</summary>
    public int SampleSize { get; set; } = 8;

    /// <summary>How long each probe waits. Default 1 s.</summary>
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(1);
}

/// <summary>
/// <c>flanneld doctor</c>: offline checks of a node, run inside its network namespace as root, with no agent needed.
/// Each finding has a severity, the evidence, and the commands that fix it (printed, never run).
/// </summary>
/// <remarks>
/// Checks: <c>mtu</c> (flannel device vs underlay vs subnet.env), <c>br-netfilter</c> (when masquerading with
/// iptables), <c>forward-policy</c> (FORWARD DROP without flannel's accept rules), <c>rp-filter</c> (strict on the
/// flannel device), <c>duplicate-leases</c> (VtepMACs or PublicIPs), <c>subnet-env</c> (out of date against the
/// lease), <c>kernel-objects</c> (missing for leased peers, left for peers without a lease), <c>vxlan-port</c>
/// (UDP reachability of a sample of peers, with the ICMP port-unreachable check) and <c>wireguard</c> (devices up,
/// MTU, listen port, peers against leases, read with <c>wg show DEV dump</c>). See docs/health.md.
/// </remarks>
public static class FabricDoctor
{
    /// <summary>Runs every check against this namespace's kernel, firewall and files.</summary>
    /// <param name="leases">The leases and network settings (from the agent's socket or the store).</param>
    /// <param name="options">The run's settings.</param>
    /// <param name="netlink">Netlink in the node's namespace.</param>
    /// <param name="commands">Runs iptables and nft (argv arrays, no shell).</param>
    /// <param name="echo">The ICMP prober for the vxlan port check; null skips it.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    public static async Task<DoctorReport> RunAsync(DoctorLeases leases, DoctorOptions options, INetlink netlink, ICommandRunner commands, IEchoProber? echo, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(leases);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(netlink);
        ArgumentNullException.ThrowIfNull(commands);
        KernelFacts kernel = await KernelFacts.ReadAsync(netlink, cancellationToken).ConfigureAwait(false);
        var facts = new DoctorFacts
        {
            Leases = leases,
            Kernel = kernel,
            Firewall = await FirewallFacts.ReadAsync(commands, cancellationToken).ConfigureAwait(false),
            SubnetEnv = SubnetEnvFile.Read(options.SubnetFile),
            SubnetFile = options.SubnetFile,
            Sysctl = Sysctl.Read,
            WireGuardDumps = await WireGuardDump.ReadAsync(WireGuardChecks.DeviceNames.Where(n => kernel.Link(n) is not null), commands, cancellationToken).ConfigureAwait(false),
        };
        return await RunAsync(facts, options, echo, UdpPortProbe.Instance, cancellationToken).ConfigureAwait(false);
    }

    internal static async Task<DoctorReport> RunAsync(DoctorFacts facts, DoctorOptions options, IEchoProber? echo, IUdpPortProbe udp, CancellationToken cancellationToken)
    {
        var findings = new List<DoctorFinding>(DoctorChecks.All(facts));
        if (options.Probe && echo is not null)
        {
            findings.AddRange(await VxlanPortCheck.RunAsync(facts, echo, udp, options.SampleSize, options.ProbeTimeout, cancellationToken).ConfigureAwait(false));
        }
        else
        {
            findings.Add(new DoctorFinding(DoctorChecks.VxlanPort, FindingSeverity.Info, "peers were not probed (--probe=false)", [], []));
        }

        return new DoctorReport
        {
            Node = facts.Leases.NodeName ?? Environment.MachineName,
            LeaseSource = facts.Leases.Source,
            Findings = [.. findings.OrderByDescending(f => f.Severity)],
        };
    }
}
