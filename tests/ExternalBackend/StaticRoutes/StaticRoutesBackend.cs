using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Flannel.Backends;
using Flannel.Configuration;
using Flannel.Netlink;
using Flannel.Reconciliation;
using Flannel.Subnets;
using Microsoft.Extensions.Logging;

namespace Example.StaticRoutes;

/// <summary>
/// Backend type <c>static-routes</c>: every remote node's subnet is routed via one gateway named in net-conf.json
/// (<c>"Backend": {"Type": "static-routes", "Gateway": "198.18.0.254"}</c>), for fabrics where a router, not the
/// hosts, knows where each node's pods are. IPv4 only.
/// </summary>
public sealed class StaticRoutesBackend : ReconcilingBackend
{
    /// <summary>The backend type in net-conf.json and in lease attributes.</summary>
    public const string TypeName = "static-routes";

    /// <summary>Creates the backend over the node's netlink.</summary>
    public StaticRoutesBackend(INetlink netlink, TimeProvider timeProvider, TimeSpan resyncInterval, ILogger<StaticRoutesBackend>? logger = null, IMeterFactory? meterFactory = null)
        : base(TypeName, netlink, resyncInterval, timeProvider, logger, meterFactory)
    {
    }

    /// <inheritdoc />
    /// <exception cref="NetworkConfigException"><c>Backend.Gateway</c> is missing or not an IPv4 address.</exception>
    public override ValueTask<INetwork> RegisterNetworkAsync(BackendContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        IPAddress gateway = ReadGateway(context.Config.Backend);
        ExternalInterface external = context.ExternalInterface;
        var attributes = new LeaseAttributes
        {
            PublicIP = external.PublicIP ?? external.IfaceAddress
                ?? throw new InvalidOperationException($"static-routes: interface {external.Name} has no IPv4 address"),
            BackendType = TypeName,
        };

        INetwork network = new StaticRoutesNetwork(Netlink, TimeProvider, ResyncInterval, CreateMetrics(), Logger, context.Config, external, gateway, attributes);
        return ValueTask.FromResult(network);
    }

    private static IPAddress ReadGateway(string? backendJson)
    {
        string? text = null;
        if (backendJson is not null)
        {
            using JsonDocument backend = JsonDocument.Parse(backendJson);
            if (backend.RootElement.TryGetProperty("Gateway", out JsonElement value) && value.ValueKind == JsonValueKind.String)
            {
                text = value.GetString();
            }
        }

        return IPAddress.TryParse(text, out IPAddress? gateway) && gateway.AddressFamily == AddressFamily.InterNetwork
            ? gateway
            : throw new NetworkConfigException(
                $"Backend.Gateway: \"{text}\" is not an IPv4 address; the static-routes backend routes every remote subnet via it",
                "Backend.Gateway",
                text);
    }
}

/// <summary>
/// The network on this node: one desired route per remote lease, <c>&lt;subnet&gt; via &lt;gateway&gt; dev &lt;external
/// interface&gt; proto flannel</c>. The engine diffs them against the routes it owns, repairs drift on each resync and
/// deletes routes of leases that are gone.
/// </summary>
internal sealed class StaticRoutesNetwork : ReconcilingNetwork
{
    private readonly NetworkConfig _config;
    private readonly ExternalInterface _external;
    private readonly IPAddress _gateway;

    public StaticRoutesNetwork(
        INetlink netlink,
        TimeProvider timeProvider,
        TimeSpan resyncInterval,
        BackendMetrics metrics,
        ILogger logger,
        NetworkConfig config,
        ExternalInterface external,
        IPAddress gateway,
        LeaseAttributes attributes)
        : base(StaticRoutesBackend.TypeName, netlink, timeProvider, resyncInterval, metrics, logger)
    {
        _config = config;
        _external = external;
        _gateway = gateway;
        LeaseAttributes = attributes;
    }

    public override LeaseAttributes LeaseAttributes { get; }

    public override int Mtu => _external.Mtu;

    public override async ValueTask ConfigureLeaseAsync(Lease ownLease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ownLease);
        await KernelGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            OwnLease = ownLease;
        }
        finally
        {
            KernelGate.Release();
        }
    }

    protected override ValueTask<IReadOnlyList<StateObject>> BuildDesiredAsync(Lease lease, string owner, CancellationToken cancellationToken)
    {
        IReadOnlyList<StateObject> desired = lease.Subnet is { } subnet
            ? [KernelObject.ForRoute(new RouteSpec { Destination = subnet, Gateway = _gateway, LinkIndex = _external.Index, Protocol = RouteDefaults.ProtocolFlannel }, owner)]
            : [];
        return ValueTask.FromResult(desired);
    }

    protected override async ValueTask<IReadOnlyList<StateObject>> DumpOwnedAsync(CancellationToken cancellationToken)
    {
        var filter = new RouteFilter { Family = AddressFamily.InterNetwork, Table = RouteDefaults.MainTable, Protocol = RouteDefaults.ProtocolFlannel, LinkIndex = _external.Index };
        var owned = new List<StateObject>();
        foreach (RouteInfo route in await Netlink.ListRoutesAsync(filter, cancellationToken).ConfigureAwait(false))
        {
            // Only routes inside the cluster network are ours to delete; our own subnet is never routed away.
            if (route.Destination != OwnLease?.Subnet && _config.Network is { } network
                && route.Destination.PrefixLength >= network.PrefixLength && network.Contains(route.Destination.BaseAddress))
            {
                owned.Add(KernelObject.ForObservedRoute(route));
            }
        }

        return owned;
    }
}
