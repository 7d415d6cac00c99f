using System.Globalization;
using System.Net;
using System.Text;
using Flannel.Configuration;
using Flannel.Networking;
using Flannel.Subnets;

namespace Flannel.SubnetEnv;

/// <summary>
/// The content of flannel's subnet.env (<c>/run/flannel/subnet.env</c>), which the CNI plugin and legacy
/// tooling read: the cluster network, this node's subnet, the MTU and whether flannel masquerades.
/// </summary>
/// <remarks>
/// <see cref="Format"/> writes exactly flannel's variables in flannel's order, unquoted, one per line:
/// <code>
/// FLANNEL_NETWORK=10.244.0.0/16
/// FLANNEL_SUBNET=10.244.2.1/24
/// FLANNEL_IPV6_NETWORK=fd00:10:244::/56
/// FLANNEL_IPV6_SUBNET=fd00:10:244:2::1/64
/// FLANNEL_MTU=1450
/// FLANNEL_IPMASQ=true
/// </code>
/// The IPv4 lines appear only when <see cref="Network"/> is set (IPv4 enabled), the IPv6 lines only when
/// <see cref="IPv6Network"/> is set.
/// </remarks>
public sealed record SubnetEnvironment
{
    /// <summary>The IPv4 cluster network (<c>FLANNEL_NETWORK</c>); null when IPv4 is disabled.</summary>
    public IPNetwork? Network { get; init; }

    /// <summary>
    /// This node's IPv4 lease subnet, e.g. 10.244.2.0/24. Written as its first host address with the prefix
    /// (<c>FLANNEL_SUBNET=10.244.2.1/24</c>); read back as the subnet again.
    /// </summary>
    public IPNetwork? Subnet { get; init; }

    /// <summary>The IPv6 cluster network (<c>FLANNEL_IPV6_NETWORK</c>); null when IPv6 is disabled.</summary>
    public IPNetwork? IPv6Network { get; init; }

    /// <summary>This node's IPv6 lease subnet (<c>FLANNEL_IPV6_SUBNET</c>, written as first host/prefix).</summary>
    public IPNetwork? IPv6Subnet { get; init; }

    /// <summary>The MTU pods should use (<c>FLANNEL_MTU</c>): the backend's MTU.</summary>
    public int Mtu { get; init; }

    /// <summary>Whether flannel installs masquerade rules (<c>FLANNEL_IPMASQ</c>, the <c>--ip-masq</c> flag).</summary>
    public bool IPMasq { get; init; }

    /// <summary>
    /// Builds the content flannel writes after registering the backend: the config's networks for the enabled
    /// families, the lease's subnets, the backend's MTU and the <c>--ip-masq</c> flag.
    /// </summary>
    /// <exception cref="ArgumentException">The lease lacks a subnet for an enabled family.</exception>
    public static SubnetEnvironment Create(NetworkConfig config, Lease lease, int mtu, bool ipMasq)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(lease);
        if (config.EnableIPv4 && (config.Network is null || lease.Subnet is null))
        {
            throw new ArgumentException("IPv4 is enabled but the config has no Network or the lease no IPv4 subnet.", nameof(lease));
        }

        if (config.EnableIPv6 && (config.IPv6Network is null || lease.IPv6Subnet is null))
        {
            throw new ArgumentException("IPv6 is enabled but the config has no IPv6Network or the lease no IPv6 subnet.", nameof(lease));
        }

        return new SubnetEnvironment
        {
            Network = config.EnableIPv4 ? config.Network : null,
            Subnet = config.EnableIPv4 ? lease.Subnet : null,
            IPv6Network = config.EnableIPv6 ? config.IPv6Network : null,
            IPv6Subnet = config.EnableIPv6 ? lease.IPv6Subnet : null,
            Mtu = mtu,
            IPMasq = ipMasq,
        };
    }

    /// <summary>The file's text, exactly as flannel writes it.</summary>
    /// <exception cref="InvalidOperationException">A network is set without its subnet, or the reverse.</exception>
    public string Format()
    {
        if ((Network is null) != (Subnet is null) || (IPv6Network is null) != (IPv6Subnet is null))
        {
            throw new InvalidOperationException("subnet.env needs both the network and the subnet of each family it lists.");
        }

        var text = new StringBuilder(160);
        if (Network is { } network && Subnet is { } subnet)
        {
            text.Append(SubnetEnvText.Network).Append('=').Append(network.ToString()).Append('\n');
            text.Append(SubnetEnvText.Subnet).Append('=').Append(FormatGateway(subnet)).Append('\n');
        }

        if (IPv6Network is { } network6 && IPv6Subnet is { } subnet6)
        {
            text.Append(SubnetEnvText.IPv6Network).Append('=').Append(network6.ToString()).Append('\n');
            text.Append(SubnetEnvText.IPv6Subnet).Append('=').Append(FormatGateway(subnet6)).Append('\n');
        }

        text.Append(SubnetEnvText.Mtu).Append('=').Append(Mtu.ToString(CultureInfo.InvariantCulture)).Append('\n');
        text.Append(SubnetEnvText.IPMasq).Append('=').Append(IPMasq ? "true" : "false").Append('\n');
        return text.ToString();
    }

    // flannel writes the subnet's first host (the bridge address) with the subnet's prefix.
    private static string FormatGateway(IPNetwork subnet) =>
        string.Create(CultureInfo.InvariantCulture, $"{IPNetworkMath.FirstHost(subnet)}/{subnet.PrefixLength}");
}
