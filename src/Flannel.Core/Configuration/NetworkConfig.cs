using System.Net;
using System.Text.Json;

namespace Flannel.Configuration;

/// <summary>
/// The flannel network configuration: net-conf.json, or the value of <c>&lt;prefix&gt;/config</c> in etcd.
/// </summary>
/// <remarks>
/// Parsing follows Go's <c>encoding/json</c> as flannel uses it: keys are matched case-insensitively and
/// unknown keys are ignored. <see cref="Parse"/> only parses (flannel's kube mode);
/// <see cref="Validate"/> applies flannel's <c>CheckNetworkConfig</c> defaults and checks (etcd mode).
/// </remarks>
public sealed partial record NetworkConfig
{
    /// <summary>The IPv4 cluster network, e.g. 10.244.0.0/16. Required when <see cref="EnableIPv4"/> is set.</summary>
    public IPNetwork? Network { get; init; }

    /// <summary>The IPv6 cluster network. Required when <see cref="EnableIPv6"/> is set.</summary>
    public IPNetwork? IPv6Network { get; init; }

    /// <summary>Whether IPv4 is enabled (default true).</summary>
    public bool EnableIPv4 { get; init; } = true;

    /// <summary>Whether IPv6 is enabled (default false).</summary>
    public bool EnableIPv6 { get; init; }

    /// <summary>Use nftables instead of iptables for masquerade and forward rules.</summary>
    public bool EnableNFTables { get; init; }

    /// <summary>Prefix length of each node's IPv4 subnet; 0 until <see cref="Validate"/> computes the default.</summary>
    public int SubnetLen { get; init; }

    /// <summary>The first IPv4 subnet that may be leased; null until defaulted.</summary>
    public IPAddress? SubnetMin { get; init; }

    /// <summary>The last IPv4 subnet that may be leased; null until defaulted.</summary>
    public IPAddress? SubnetMax { get; init; }

    /// <summary>Prefix length of each node's IPv6 subnet; 0 until defaulted.</summary>
    public int IPv6SubnetLen { get; init; }

    /// <summary>The first IPv6 subnet that may be leased; null until defaulted.</summary>
    public IPAddress? IPv6SubnetMin { get; init; }

    /// <summary>The last IPv6 subnet that may be leased; null until defaulted.</summary>
    public IPAddress? IPv6SubnetMax { get; init; }

    /// <summary>The backend type from <c>Backend.Type</c>, lower-cased; <c>vxlan</c> when <c>Backend</c> is absent.</summary>
    public string BackendType { get; init; } = "vxlan";

    /// <summary>The raw <c>Backend</c> object, kept for the backend to read its own options; null when absent.</summary>
    public string? Backend { get; init; }
}
