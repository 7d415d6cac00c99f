using Flannel.Netlink;

namespace Flannel.Reconciliation;

/// <summary>Applies <see cref="KernelObject"/> steps as one netlink batch; a delete the kernel answers "not found" is done.</summary>
internal sealed class NetlinkStateApplier(INetlink netlink) : IStateApplier
{
    public async ValueTask<IReadOnlyList<Exception?>> ApplyAsync(IReadOnlyList<PlannedStep> steps, CancellationToken cancellationToken)
    {
        var batch = new NetlinkBatch(steps.Count);
        foreach (PlannedStep step in steps)
        {
            KernelObject target = step.Target as KernelObject
                ?? throw new InvalidOperationException($"'{step.Target.Description}' is of kind '{step.Target.Kind.Name}' but not a KernelObject; only KernelObjects are applied through netlink.");
            batch.Add(target.OperationFor(step.Action));
        }

        NetlinkBatchResult result = await netlink.ApplyAsync(batch, cancellationToken).ConfigureAwait(false);
        var errors = new Exception?[steps.Count];
        for (int i = 0; i < steps.Count; i++)
        {
            NetlinkException? error = result[i];
            errors[i] = error is { IsNotFound: true } && steps[i].Action == RepairAction.Deleted ? null : error;
        }

        return errors;
    }
}
