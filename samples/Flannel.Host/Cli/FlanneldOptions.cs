using System.Net;

namespace Flannel.Host.Cli;

/// <summary>
/// Every flanneld command-line flag (flannel's <c>main.go</c>, section 8 of the compatibility contract), with
/// flannel's defaults. Produced by <see cref="FlanneldCommandLine.Parse"/> from the command line and the
/// <c>FLANNELD_*</c> environment variables.
/// </summary>
public sealed record FlanneldOptions
{
    /// <summary>Flannel's default subnet file.</summary>
    public const string DefaultSubnetFile = "/run/flannel/subnet.env";

    /// <summary><c>--etcd-endpoints</c>: a comma-delimited list of etcd endpoints.</summary>
    public string EtcdEndpoints { get; init; } = "http://127.0.0.1:4001,http://127.0.0.1:2379";

    /// <summary><c>--etcd-prefix</c>: the etcd key prefix.</summary>
    public string EtcdPrefix { get; init; } = "/coreos.com/network";

    /// <summary><c>--etcd-keyfile</c>: TLS key file for etcd (TLS is used only with both key and certificate).</summary>
    public string EtcdKeyFile { get; init; } = "";

    /// <summary><c>--etcd-certfile</c>: TLS certificate file for etcd.</summary>
    public string EtcdCertFile { get; init; } = "";

    /// <summary><c>--etcd-cafile</c>: TLS certificate authority file for etcd.</summary>
    public string EtcdCAFile { get; init; } = "";

    /// <summary><c>--etcd-username</c>: user name for etcd authentication.</summary>
    public string EtcdUsername { get; init; } = "";

    /// <summary><c>--etcd-password</c>: password for etcd authentication.</summary>
    public string EtcdPassword { get; init; } = "";

    /// <summary><c>--kube-subnet-mgr</c>: use the Kubernetes API for subnet assignment instead of etcd.</summary>
    public bool KubeSubnetManager { get; init; }

    /// <summary><c>--kube-api-url</c>: the Kubernetes API server URL (not needed inside a pod).</summary>
    public string KubeApiUrl { get; init; } = "";

    /// <summary><c>--kubeconfig-file</c>: kubeconfig location (not needed inside a pod).</summary>
    public string KubeConfigFile { get; init; } = "";

    /// <summary><c>--kube-annotation-prefix</c>: the node annotation prefix.</summary>
    public string KubeAnnotationPrefix { get; init; } = "flannel.alpha.coreos.com";

    /// <summary><c>--net-config-path</c>: the network configuration file (kube mode).</summary>
    public string NetConfigPath { get; init; } = "/etc/kube-flannel/net-conf.json";

    /// <summary><c>--set-node-network-unavailable</c>: set the NodeNetworkUnavailable condition after ready.</summary>
    public bool SetNodeNetworkUnavailable { get; init; } = true;

    /// <summary><c>--iface</c> (repeatable): interface names or IP addresses, tried in order.</summary>
    public IReadOnlyList<string> Interfaces { get; init; } = [];

    /// <summary><c>--iface-regex</c> (repeatable): regular expressions over interface IPs then names, tried after <see cref="Interfaces"/>.</summary>
    public IReadOnlyList<string> InterfaceRegexes { get; init; } = [];

    /// <summary><c>--iface-can-reach</c>: use the interface of the route to this address; null when not set.</summary>
    public IPAddress? InterfaceCanReach { get; init; }

    /// <summary><c>--public-ip</c>: the IPv4 address other nodes use to reach this one; null when not set.</summary>
    public IPAddress? PublicIP { get; init; }

    /// <summary><c>--public-ipv6</c>: the IPv6 address other nodes use to reach this one; null when not set.</summary>
    public IPAddress? PublicIPv6 { get; init; }

    /// <summary><c>--subnet-file</c>: where subnet.env is written.</summary>
    public string SubnetFile { get; init; } = DefaultSubnetFile;

    /// <summary><c>--subnet-lease-renew-margin</c>: minutes before expiry at which the lease is renewed (1..1439).</summary>
    public int SubnetLeaseRenewMarginMinutes { get; init; } = 60;

    /// <summary><c>--ip-masq</c>: install the masquerade rules for traffic leaving the overlay.</summary>
    public bool IPMasq { get; init; }

    /// <summary><c>--ip-masq-fully-random-disable</c>: do not use <c>--random-fully</c> on the masquerade rules.</summary>
    public bool IPMasqFullyRandomDisable { get; init; }

    /// <summary><c>--iptables-resync</c>: resync period of the iptables rules (and the blackhole route), in seconds.</summary>
    public int IptablesResyncSeconds { get; init; } = 5;

    /// <summary><c>--iptables-forward-rules</c>: install the FORWARD accept rules.</summary>
    public bool IptablesForwardRules { get; init; } = true;

    /// <summary><c>--ip-blackhole-route</c>: keep a blackhole route for the lease subnet.</summary>
    public bool IPBlackholeRoute { get; init; }

    /// <summary><c>--status-socket</c>: the unix socket the agent serves its fabric status on; empty disables it.</summary>
    public string StatusSocket { get; init; } = Flannel.Agent.Status.StatusSocketOptions.DefaultPath;

    /// <summary><c>--probe-interval</c>: every peer is probed once per interval; zero disables the probes.</summary>
    public TimeSpan ProbeInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary><c>--probe-timeout</c>: how long a probe waits for its reply.</summary>
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary><c>--probe-per-peer-metrics</c>: one <c>flannel_peer_reachable</c> series per peer (a <c>peer</c> label).</summary>
    public bool ProbePerPeerMetrics { get; init; }

    /// <summary><c>--status-http</c>: also serve the fabric status under <c>/status</c> on the healthz port.</summary>
    public bool StatusHttp { get; init; }

    /// <summary><c>--healthz-ip</c>: the address the health server listens on.</summary>
    public IPAddress HealthzIP { get; init; } = IPAddress.Any;

    /// <summary><c>--healthz-port</c>: the port of the health server; 0 disables it.</summary>
    public int HealthzPort { get; init; }

    /// <summary><c>--version</c>: print the version and exit.</summary>
    public bool Version { get; init; }

    /// <summary><c>-v</c> (klog): log verbosity level.</summary>
    public int Verbosity { get; init; }

    /// <summary><c>-vmodule</c> (klog): per-file verbosity, <c>pattern=N,...</c>.</summary>
    public string VModule { get; init; } = "";

    /// <summary><c>-log_backtrace_at</c> (klog): <c>file.go:line</c> at which to log a stack trace.</summary>
    public string LogBacktraceAt { get; init; } = "";

    /// <summary><c>-h</c>/<c>-help</c>: print the usage and exit 0, as Go's flag package does.</summary>
    public bool HelpRequested { get; init; }

    /// <summary>The flag names given on the command line (they win over the environment).</summary>
    public IReadOnlySet<string> CommandLineFlags { get; init; } = new HashSet<string>();

    /// <summary>The flag names taken from <c>FLANNELD_*</c> environment variables.</summary>
    public IReadOnlySet<string> EnvironmentFlags { get; init; } = new HashSet<string>();

    /// <summary>
    /// Arguments after the first non-flag argument (or after <c>--</c>). Go's flag package stops there and
    /// flanneld ignores them; the host should warn about them.
    /// </summary>
    public IReadOnlyList<string> ExtraArguments { get; init; } = [];

    /// <summary>The etcd endpoints as a list (<see cref="EtcdEndpoints"/> split at commas, as flannel does).</summary>
    public IReadOnlyList<string> EtcdEndpointList => EtcdEndpoints.Split(',');

    /// <summary>The lease renewal margin as a time span.</summary>
    public TimeSpan SubnetLeaseRenewMargin => TimeSpan.FromMinutes(SubnetLeaseRenewMarginMinutes);

    /// <summary>The iptables resync period as a time span.</summary>
    public TimeSpan IptablesResyncPeriod => TimeSpan.FromSeconds(IptablesResyncSeconds);

    /// <summary>True when TLS to etcd is configured (flannel uses TLS only when both key and certificate are set).</summary>
    public bool EtcdUsesTls => EtcdKeyFile.Length > 0 && EtcdCertFile.Length > 0;

    /// <summary>
    /// The options as flannel logs them at startup ("CLI flags config"), with the etcd password masked.
    /// </summary>
    public override string ToString() =>
        $"{{etcdEndpoints:{EtcdEndpoints} etcdPrefix:{EtcdPrefix} etcdKeyfile:{EtcdKeyFile} etcdCertfile:{EtcdCertFile} " +
        $"etcdCAFile:{EtcdCAFile} etcdUsername:{EtcdUsername} etcdPassword:{(EtcdPassword.Length > 0 ? "********" : "")} " +
        $"version:{Lower(Version)} kubeSubnetMgr:{Lower(KubeSubnetManager)} kubeApiUrl:{KubeApiUrl} " +
        $"kubeAnnotationPrefix:{KubeAnnotationPrefix} kubeConfigFile:{KubeConfigFile} iface:[{string.Join(' ', Interfaces)}] " +
        $"ifaceRegex:[{string.Join(' ', InterfaceRegexes)}] ipMasq:{Lower(IPMasq)} ifaceCanReach:{InterfaceCanReach} " +
        $"subnetFile:{SubnetFile} publicIP:{PublicIP} publicIPv6:{PublicIPv6} subnetLeaseRenewMargin:{SubnetLeaseRenewMarginMinutes} " +
        $"healthzIP:{HealthzIP} healthzPort:{HealthzPort} iptablesResyncSeconds:{IptablesResyncSeconds} " +
        $"iptablesForwardRules:{Lower(IptablesForwardRules)} netConfPath:{NetConfigPath} " +
        $"setNodeNetworkUnavailable:{Lower(SetNodeNetworkUnavailable)} ipMasqFullyRandomDisable:{Lower(IPMasqFullyRandomDisable)} " +
        $"ipBlackholeRoute:{Lower(IPBlackholeRoute)}}}";

    private static string Lower(bool value) => value ? "true" : "false";
}
