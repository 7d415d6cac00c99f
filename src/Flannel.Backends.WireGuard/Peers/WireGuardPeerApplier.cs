using Flannel.Backends.WireGuard.Userspace;
using Flannel.Netlink;
using Flannel.Netlink.WireGuard;
using Flannel.Reconciliation;
using Microsoft.Extensions.Logging;

namespace Flannel.Backends.WireGuard.Peers;

/// <summary>
/// Applies <see cref="WireGuardPeerObject"/> steps through the chosen <see cref="IWireGuardControl"/> (kernel generic
/// netlink or wireguard-go's UAPI socket): one device update per device, in plan order. When a device refuses the
/// update as a whole, its peers are applied one at a time, so one bad peer never blocks the others and the engine
/// withdraws and retries only that one.
/// </summary>
internal sealed partial class WireGuardPeerApplier(Func<IWireGuardControl> control, ILogger logger) : IStateApplier
{
    public async ValueTask<IReadOnlyList<Exception?>> ApplyAsync(IReadOnlyList<PlannedStep> steps, CancellationToken cancellationToken)
    {
        var errors = new Exception?[steps.Count];
        IWireGuardControl wireGuard = control();
        foreach (IGrouping<string, int> device in Enumerable.Range(0, steps.Count).GroupBy(i => PeerOf(steps[i]).Device, StringComparer.Ordinal))
        {
            int[] indexes = [.. device];
            WireGuardPeerUpdate[] updates = [.. indexes.Select(i => PeerOf(steps[i]).UpdateFor(steps[i].Action))];
            try
            {
                await wireGuard.SetDeviceAsync(new WireGuardDeviceUpdate { Name = device.Key, Peers = updates }, cancellationToken).ConfigureAwait(false);
                foreach (int i in indexes)
                {
                    LogApplied(steps[i]);
                }

                continue;
            }
            catch (Exception e) when (IsRefusal(e))
            {
                LogBatchRefused(logger, device.Key, updates.Length, e.Message);
            }

            // A device that is gone refuses every peer for a reason none of them is to blame for: the engine retries
            // the whole pass, whose preparation recreates the device.
            _ = await wireGuard.GetDeviceAsync(device.Key, cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"wireguard: {device.Key} is gone; its peers are applied again once it is recreated");
            for (int n = 0; n < indexes.Length; n++)
            {
                try
                {
                    await wireGuard.SetDeviceAsync(new WireGuardDeviceUpdate { Name = device.Key, Peers = [updates[n]] }, cancellationToken).ConfigureAwait(false);
                    LogApplied(steps[indexes[n]]);
                }
                catch (Exception e) when (IsRefusal(e))
                {
                    errors[indexes[n]] = e;
                }
            }
        }

        return errors;
    }

    private static WireGuardPeerObject PeerOf(PlannedStep step) => step.Target as WireGuardPeerObject
        ?? throw new InvalidOperationException($"'{step.Target.Description}' is of kind '{step.Target.Kind.Name}', not a WireGuard peer.");

    private static bool IsRefusal(Exception e) => e is NetlinkException or IOException or WireGuardUapiException;

    private void LogApplied(PlannedStep step)
    {
        WireGuardPeerObject peer = PeerOf(step);
        if (step.Action == RepairAction.Deleted)
        {
            LogPeerRemoved(logger, peer.PublicKey, peer.Device);
        }
        else
        {
            string allowedIps = string.Join(",", peer.Peer.AllowedIps);
            LogPeerSet(logger, peer.PublicKey, peer.Device, peer.Owner ?? "(none)", peer.Peer.Endpoint, allowedIps);
        }
    }

    [LoggerMessage(EventId = 6313, Level = LogLevel.Information, Message = "wireguard: peer {PublicKey} on {Device} for {Lease}: endpoint {Endpoint}, allowed ips {AllowedIps}")]
    private static partial void LogPeerSet(ILogger logger, WireGuardKey publicKey, string device, string lease, System.Net.IPEndPoint? endpoint, string allowedIps);

    [LoggerMessage(EventId = 6314, Level = LogLevel.Information, Message = "wireguard: removed peer {PublicKey} from {Device}: no lease wants it")]
    private static partial void LogPeerRemoved(ILogger logger, WireGuardKey publicKey, string device);

    [LoggerMessage(EventId = 6317, Level = LogLevel.Warning, Message = "wireguard: {Device} refused {Count} peer change(s) at once ({Error}); applying them one by one")]
    private static partial void LogBatchRefused(ILogger logger, string device, int count, string error);
}
