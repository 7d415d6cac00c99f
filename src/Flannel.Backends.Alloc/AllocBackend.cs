using System.Net;
using Flannel.Subnets;

namespace Flannel.Backends.Alloc;

/// <summary>
/// flannel's <c>alloc</c> backend: it only allocates. The node leases a subnet (and writes subnet.env) so that
/// something else, a cloud route table or a router, can route it; no device, route or rule is programmed for peers.
/// </summary>
/// <remarks>
/// Like flannel, the published lease carries only the public IP: no BackendType and no BackendData
/// (<c>{"PublicIP":"198.18.0.11","PublicIPv6":null}</c>), and FLANNEL_MTU is the interface's MTU.
/// </remarks>
public sealed class AllocBackend : IBackend
{
    /// <summary>The backend type in net-conf.json.</summary>
    public const string TypeName = "alloc";

    /// <inheritdoc />
    public string BackendType => TypeName;

    /// <inheritdoc />
    public ValueTask<INetwork> RegisterNetworkAsync(BackendContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var attributes = new LeaseAttributes { PublicIP = context.ExternalInterface.PublicIP ?? IPAddress.Any };
        return ValueTask.FromResult<INetwork>(new AllocNetwork(attributes, context.ExternalInterface.Mtu));
    }

    private sealed class AllocNetwork(LeaseAttributes attributes, int mtu) : INetwork
    {
        public LeaseAttributes LeaseAttributes { get; } = attributes;

        public int Mtu { get; } = mtu;

        public ValueTask ConfigureLeaseAsync(Lease ownLease, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        /// <summary>Consumes the lease events (so the store's watch keeps the agent's view current) and programs nothing.</summary>
        public async Task RunAsync(IAsyncEnumerable<IReadOnlyList<LeaseEvent>> leaseEvents, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(leaseEvents);
            try
            {
                await foreach (IReadOnlyList<LeaseEvent> _ in leaseEvents.WithCancellation(cancellationToken).ConfigureAwait(false))
                {
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
            }
        }
    }
}
