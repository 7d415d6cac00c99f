using System.Diagnostics.Metrics;
using System.Net;
using Flannel.Reconciliation;
using Flannel.Netlink;
using Flannel.Subnets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Flannel.Backends.HostGw;

/// <summary>
/// flannel's <c>host-gw</c> backend: every remote subnet is routed via the remote host's address on the shared
/// underlay (<c>10.244.2.0/24 via 198.18.0.12 dev eth0</c>), with no encapsulation. Needs layer-2 adjacency
/// between hosts and no NAT.
/// </summary>
public sealed class HostGwBackend : ReconcilingBackend
{
    /// <summary>The backend type in net-conf.json and in lease attributes.</summary>
    public const string TypeName = "host-gw";

    /// <summary>flannel's refusal when the public address is not the interface's own (NAT).</summary>
    public const string NatNotSupportedMessage =
        "your PublicIP differs from interface IP, meaning that probably you're on a NAT, which is not supported by host-gw backend";

    /// <summary>Creates the backend over the node's <see cref="INetlink"/>.</summary>
    /// <param name="netlink">The kernel interface (bound to the node's network namespace).</param>
    /// <param name="options">Host-side options (resync interval).</param>
    /// <param name="timeProvider">Clock for resync ticks and retry backoff.</param>
    /// <param name="logger">Logger; none when null.</param>
    /// <param name="meterFactory">Creates the <c>Flannel.Backends</c> meter; a private meter when null.</param>
    public HostGwBackend(INetlink netlink, IOptions<HostGwBackendOptions> options, TimeProvider timeProvider, ILogger<HostGwBackend>? logger = null, IMeterFactory? meterFactory = null)
        : base(TypeName, netlink, (options ?? throw new ArgumentNullException(nameof(options))).Value.ResyncInterval, timeProvider, logger, meterFactory)
    {
    }

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The public address differs from the interface address (NAT), or the interface lacks an address of an enabled family.</exception>
    public override ValueTask<INetwork> RegisterNetworkAsync(BackendContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ExternalInterface external = context.ExternalInterface;

        // Peers route to our PublicIP as a next hop on their own link: it must be this interface's address.
        if (context.Config.EnableIPv4)
        {
            IPAddress iface = external.IfaceAddress
                ?? throw new InvalidOperationException($"host-gw: IPv4 is enabled but interface {external.Name} has no IPv4 address");
            if (external.PublicIP is { } publicIP && !publicIP.Equals(iface))
            {
                throw new InvalidOperationException(NatNotSupportedMessage);
            }
        }

        if (context.Config.EnableIPv6)
        {
            IPAddress iface = external.IfaceIPv6Address
                ?? throw new InvalidOperationException($"host-gw: IPv6 is enabled but interface {external.Name} has no IPv6 address");
            if (external.PublicIPv6 is { } publicIPv6 && !publicIPv6.Equals(iface))
            {
                throw new InvalidOperationException(NatNotSupportedMessage);
            }
        }

        var attributes = new LeaseAttributes
        {
            PublicIP = context.Config.EnableIPv4 ? external.IfaceAddress! : IPAddress.Any,
            PublicIPv6 = context.Config.EnableIPv6 ? external.IfaceIPv6Address : null,
            BackendType = TypeName,
        };

        INetwork network = new HostGwNetwork(Netlink, TimeProvider, ResyncInterval, CreateMetrics(), Logger, context.Config, external, attributes);
        return ValueTask.FromResult(network);
    }
}
