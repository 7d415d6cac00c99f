using Etcdserverpb;

namespace Flannel.Store.Etcd;

/// <summary>
/// The part of etcd's v3 API the store uses, in etcd's own protobuf messages: the seam between the store's logic
/// (keys, lease JSON, compare-and-swap, re-acquisition, the compaction-safe watch) and the wire (gRPC channels, TLS,
/// auth tokens, failover between members, dead-stream detection). <see cref="EtcdConnection"/> is the real one; the
/// tests have an in-memory one that a shared conformance suite checks against a real etcd.
/// </summary>
/// <remarks>
/// Failures are etcd's: an <see cref="Grpc.Core.RpcException"/> with etcd's status and text (for example
/// <c>NotFound</c>, <c>etcdserver: requested lease not found</c>), or an I/O exception for a connection that broke.
/// The store's retry loops decide what to do with them.
/// </remarks>
internal interface IEtcdKeyValue : IDisposable
{
    /// <summary>The endpoints, as the operator gave them, for messages.</summary>
    string EndpointsText { get; }

    /// <summary>True when the connection is encrypted.</summary>
    bool IsTls { get; }

    /// <summary>Reads one key, or a key range (<see cref="RangeRequest.RangeEnd"/>).</summary>
    Task<RangeResponse> RangeAsync(RangeRequest request, CancellationToken cancellationToken);

    /// <summary>A transaction: compares, then the success or the failure operations.</summary>
    Task<TxnResponse> TxnAsync(TxnRequest request, CancellationToken cancellationToken);

    /// <summary>Grants an etcd lease.</summary>
    Task<LeaseGrantResponse> LeaseGrantAsync(LeaseGrantRequest request, CancellationToken cancellationToken);

    /// <summary>Revokes an etcd lease, deleting every key attached to it.</summary>
    Task<LeaseRevokeResponse> LeaseRevokeAsync(LeaseRevokeRequest request, CancellationToken cancellationToken);

    /// <summary>An etcd lease's remaining TTL (−1 when it does not exist) and, when asked, its keys.</summary>
    Task<LeaseTimeToLiveResponse> LeaseTimeToLiveAsync(LeaseTimeToLiveRequest request, CancellationToken cancellationToken);

    /// <summary>One keep-alive of an etcd lease; a TTL of 0 or less means the lease is gone.</summary>
    Task<LeaseKeepAliveResponse> LeaseKeepAliveOnceAsync(long leaseId, CancellationToken cancellationToken);

    /// <summary>
    /// Opens one watch and yields etcd's responses: first <c>Created</c>, then events in revision order, progress
    /// notifications, and a final <c>Canceled</c> (for example with a <c>CompactRevision</c>). The watch asks for a
    /// leader (a member that lost its leader ends it). A stream that breaks or stops answering throws; the caller
    /// resumes from the revision after the last event it saw.
    /// </summary>
    IAsyncEnumerable<WatchResponse> WatchAsync(WatchCreateRequest request, CancellationToken cancellationToken);
}
