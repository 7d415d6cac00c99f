using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Etcdserverpb;
using Flannel.Subnets;
using Lease = Flannel.Subnets.Lease;
using Google.Protobuf;
using Grpc.Core;
using Mvccpb;

namespace Flannel.Store.Etcd;

public sealed partial class EtcdSubnetStore
{
    /// <summary>
    /// Keeps the node's lease: a KeepAlive on its etcd lease at the renew margin, and a watch on its own key.
    /// When the key is deleted, expires, or is overwritten by another writer, logs it loudly and acquires again
    /// (keeping the subnet if it is still free), then yields the new lease. Renewals are yielded too, with the
    /// new expiration. Runs until cancelled; etcd outages are retried with backoff.
    /// </summary>
    public async IAsyncEnumerable<Lease> KeepLeaseAsync(Lease lease, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var output = Channel.CreateUnbounded<Lease>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task loop = KeepLeaseLoopAsync(lease, output.Writer, stop.Token);
        try
        {
            await foreach (Lease changed in output.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return changed;
            }

            await loop.ConfigureAwait(false); // Surfaces a permanent failure (TLS, auth, out of subnets).
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    private enum LossReason
    {
        Deleted,
        Overwritten,
        EtcdLeaseExpired,
    }

    private async Task KeepLeaseLoopAsync(Lease lease, ChannelWriter<Lease> output, CancellationToken cancellationToken)
    {
        Exception? failure = null;
        try
        {
            Lease current = lease;
            while (!cancellationToken.IsCancellationRequested)
            {
                using var round = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                Task<LossReason> watch = WatchOwnKeyAsync(current, round.Token);
                Task<LossReason> renew = RenewLoopAsync(current, output, round.Token);
                Task<LossReason> first = await Task.WhenAny(watch, renew).ConfigureAwait(false);
                await round.CancelAsync().ConfigureAwait(false);
                await Task.WhenAll(Quietly(watch), Quietly(renew)).ConfigureAwait(false);
                LossReason reason = await first.ConfigureAwait(false);
                string key = _keys.LeaseKey(current.Subnet, current.IPv6Subnet);
                Log.OwnLeaseLost(_logger, key, reason.ToString());
                Statistics.AddReacquisition();
                if (reason == LossReason.EtcdLeaseExpired)
                {
                    ForgetEtcdLease(Volatile.Read(ref _etcdLeaseId));
                }

                current = await AcquireLeaseAsync(
                    new LeaseRequest { Attributes = current.Attributes, PreviousSubnet = current.Subnet, PreviousIPv6Subnet = current.IPv6Subnet },
                    cancellationToken).ConfigureAwait(false);
                Log.OwnLeaseReacquired(_logger, _keys.LeaseKey(current.Subnet, current.IPv6Subnet), key);
                await output.WriteAsync(current, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            failure = ex;
            throw;
        }
        finally
        {
            output.TryComplete(failure);
        }
    }

    private static async Task Quietly(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Renews the etcd lease at the margin; returns when the etcd lease is gone.</summary>
    private async Task<LossReason> RenewLoopAsync(Lease lease, ChannelWriter<Lease> renewed, CancellationToken cancellationToken)
    {
        if (lease.IsReservation)
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, _time, cancellationToken).ConfigureAwait(false);
        }

        long leaseId = await EnsureEtcdLeaseAsync(cancellationToken).ConfigureAwait(false);
        DateTimeOffset expiration = lease.Expiration ?? _etcdLeaseExpiration;
        string renewKey = _keys.LeaseKey(lease.Subnet, lease.IPv6Subnet);
        TimeSpan retry = TimeSpan.FromSeconds(1);
        bool retryNow = false;
        while (true)
        {
            // flannel renews at expiration - margin; a margin longer than the TTL (short test TTLs) renews at a third.
            TimeSpan margin = TimeSpan.FromMinutes(_options.SubnetLeaseRenewMargin);
            TimeSpan cap = _options.LeaseTtl * 2 / 3;
            TimeSpan wait = expiration - (margin < cap ? margin : cap) - _time.GetUtcNow();
            if (!retryNow && wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, _time, cancellationToken).ConfigureAwait(false);
            }

            try
            {
                DateTimeOffset? next = await KeepAliveOnceAsync(leaseId, cancellationToken).ConfigureAwait(false);
                if (next is not { } n)
                {
                    return LossReason.EtcdLeaseExpired;
                }

                expiration = n;
                retry = TimeSpan.FromSeconds(1);
                retryNow = false;
                Log.LeaseRenewed(_logger, renewKey, n);
                await renewed.WriteAsync(lease with { Expiration = n }, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsRetryCandidate(ex, cancellationToken))
            {
                ThrowIfPermanent(ex);
                // Retry sooner as the expiration nears, so that a short outage never costs the lease.
                TimeSpan remaining = expiration - _time.GetUtcNow();
                TimeSpan delay = retry < remaining / 3 ? retry : remaining / 3;
                if (delay < TimeSpan.FromMilliseconds(100))
                {
                    delay = TimeSpan.FromMilliseconds(100);
                }

                Log.EtcdUnreachable(_logger, "renew the lease", EndpointsText, delay, ex.Message);
                Statistics.AddTransientError();
                await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
                retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
                retryNow = true;
            }
        }
    }

    /// <summary>Watches the node's own key; returns when it is deleted or overwritten by another writer.</summary>
    private async Task<LossReason> WatchOwnKeyAsync(Lease lease, CancellationToken cancellationToken)
    {
        string key = _keys.LeaseKey(lease.Subnet, lease.IPv6Subnet);
        ByteString keyBytes = ByteString.CopyFromUtf8(key);
        byte[] ours = LeaseJson.SerializeToUtf8Bytes(lease.Attributes);
        long next = lease.Revision + 1;
        TimeSpan backoff = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                bool ended = true;
                await foreach (WatchResponse response in _etcd.WatchAsync(
                    new WatchCreateRequest { Key = keyBytes, StartRevision = next, ProgressNotify = true }, cancellationToken).ConfigureAwait(false))
                {
                    backoff = TimeSpan.FromMilliseconds(100);
                    if (response.Canceled || response.CompactRevision != 0)
                    {
                        // History we would resume from is compacted: look at the key as it is now instead.
                        RangeResponse now = await _etcd.RangeAsync(new RangeRequest { Key = keyBytes }, cancellationToken).ConfigureAwait(false);
                        if (now.Kvs.Count == 0)
                        {
                            return LossReason.Deleted;
                        }

                        if (!now.Kvs[0].Value.Span.SequenceEqual(ours))
                        {
                            return LossReason.Overwritten;
                        }

                        next = now.Header.Revision + 1;
                        ended = false;
                        break;
                    }

                    foreach (Event ev in response.Events)
                    {
                        next = ev.Kv.ModRevision + 1;
                        if (ev.Type == Event.Types.EventType.Delete)
                        {
                            return LossReason.Deleted;
                        }

                        if (!ev.Kv.Value.Span.SequenceEqual(ours))
                        {
                            return LossReason.Overwritten;
                        }
                    }
                }

                if (ended)
                {
                    throw new IOException("etcd closed the watch stream.");
                }
            }
            catch (Exception ex) when (IsRetryCandidate(ex, cancellationToken))
            {
                ThrowIfPermanent(ex);
                Log.WatchInterrupted(_logger, key, EndpointsText, backoff, next, ex.Message);
                await Task.Delay(backoff, _time, cancellationToken).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
        }
    }
}
