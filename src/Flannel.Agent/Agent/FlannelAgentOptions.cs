namespace Flannel.Agent;

/// <summary>
/// The agent's settings: flanneld's flags that concern one node's agent. Bind them from configuration (section
/// <c>Flannel:Agent</c> by convention) or set them in a delegate; they are validated when the host starts.
/// </summary>
public sealed class FlannelAgentOptions
{
    /// <summary>The default subnet file, <c>/run/flannel/subnet.env</c>.</summary>
    public const string DefaultSubnetFile = "/run/flannel/subnet.env";

    /// <summary>
    /// The agent's name, used in logs, metrics tags and readiness reasons; several agents in one process need
    /// distinct names. Default <c>flanneld</c>.
    /// </summary>
    public string Name { get; set; } = "flanneld";

    /// <summary><c>--subnet-file</c>: where subnet.env is written (and read back at startup).</summary>
    public string SubnetFile { get; set; } = DefaultSubnetFile;

    /// <summary><c>--ip-masq</c>: install the masquerade rules for traffic leaving the cluster network.</summary>
    public bool IpMasq { get; set; }

    /// <summary><c>--ip-masq-fully-random-disable</c>: do not add <c>--random-fully</c> to MASQUERADE rules.</summary>
    public bool IpMasqFullyRandomDisable { get; set; }

    /// <summary><c>--iface</c> (repeatable): interface names or addresses, tried in order.</summary>
    public IList<string> Iface { get; } = [];

    /// <summary><c>--iface-regex</c> (repeatable): patterns matched against addresses, then names.</summary>
    public IList<string> IfaceRegex { get; } = [];

    /// <summary><c>--iface-can-reach</c>: use the interface the kernel routes this address through.</summary>
    public string? IfaceCanReach { get; set; }

    /// <summary><c>--public-ip</c>: the IPv4 address peers reach this node on.</summary>
    public string? PublicIP { get; set; }

    /// <summary><c>--public-ipv6</c>: the IPv6 address peers reach this node on.</summary>
    public string? PublicIPv6 { get; set; }

    /// <summary>
    /// <c>--subnet-lease-renew-margin</c> in minutes (1..1439, default 60): how long before expiry the store renews the
    /// lease. Handed to the subnet store by the host.
    /// </summary>
    public int SubnetLeaseRenewMarginMinutes { get; set; } = 60;

    /// <summary><c>--iptables-resync</c>: how often traffic rules (and the blackhole route) are checked and repaired. Default 5 s.</summary>
    public TimeSpan IptablesResync { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary><c>--iptables-forward-rules</c>: install the FORWARD accept rules for the cluster network. Default true.</summary>
    public bool IptablesForwardRules { get; set; } = true;

    /// <summary><c>--ip-blackhole-route</c>: keep a blackhole route for this node's subnet.</summary>
    public bool IpBlackholeRoute { get; set; }

    /// <summary>First delay before retrying a failed store call (config, lease, watch). Default 1 s (flanneld's config retry).</summary>
    public TimeSpan StoreRetryInitialDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest delay between store retries; delays double up to it. Default 30 s.</summary>
    public TimeSpan StoreRetryMaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How peers are probed over the overlay and the underlay (<c>--probe-interval</c>, <c>--probe-timeout</c> in
    /// flanneld). Probes run only when a prober is registered (<c>UseFabricProbes</c>).
    /// </summary>
    public Flannel.Agent.Probing.FabricProbeOptions Probes { get; set; } = new();

    /// <summary>
    /// The unix socket the agent serves its <see cref="Flannel.Agent.Status.FabricStatus"/> on (mode 0600), for
    /// <c>flanneld status</c> and <c>flanneld doctor</c>; null or empty: none (the default for an embedded agent;
    /// flanneld's default is <see cref="Flannel.Agent.Status.StatusSocketOptions.DefaultPath"/>).
    /// </summary>
    public string? StatusSocket { get; set; }
}
