namespace Flannel.Store.Etcd;

/// <summary>What a store has done so far: acquisitions, lost races, transient errors, renewals. Thread-safe.</summary>
public sealed class EtcdSubnetStoreStatistics
{
    private long _acquisitions;
    private long _acquisitionsWithRetries;
    private long _conflicts;
    private long _transientErrors;
    private long _renewals;
    private long _reacquisitions;

    /// <summary>Leases acquired.</summary>
    public long Acquisitions => Interlocked.Read(ref _acquisitions);

    /// <summary>Acquisitions that needed at least one retry after a lost race.</summary>
    public long AcquisitionsWithRetries => Interlocked.Read(ref _acquisitionsWithRetries);

    /// <summary>Transactions that lost a race (the key was created or changed by someone else first).</summary>
    public long Conflicts => Interlocked.Read(ref _conflicts);

    /// <summary>Calls that failed transiently (etcd unreachable, deadline) and were retried.</summary>
    public long TransientErrors => Interlocked.Read(ref _transientErrors);

    /// <summary>Successful KeepAlives of the node's etcd lease.</summary>
    public long Renewals => Interlocked.Read(ref _renewals);

    /// <summary>Times the node's lease was lost (deleted, expired, taken) and acquired again.</summary>
    public long Reacquisitions => Interlocked.Read(ref _reacquisitions);

    internal void AddAcquisition(int races)
    {
        Interlocked.Increment(ref _acquisitions);
        if (races > 0)
        {
            Interlocked.Increment(ref _acquisitionsWithRetries);
        }
    }

    internal void AddConflict() => Interlocked.Increment(ref _conflicts);

    internal void AddTransientError() => Interlocked.Increment(ref _transientErrors);

    internal void AddRenewal() => Interlocked.Increment(ref _renewals);

    internal void AddReacquisition() => Interlocked.Increment(ref _reacquisitions);
}
