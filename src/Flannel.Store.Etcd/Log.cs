using System.Net;
using Microsoft.Extensions.Logging;

namespace Flannel.Store.Etcd;

/// <summary>The etcd store's log messages; event IDs 4000-4099 belong to this assembly.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 4000, Level = LogLevel.Warning,
        Message = "No certificate provided: connecting to etcd at {Endpoints} with http. This is insecure")]
    public static partial void InsecureConnection(ILogger logger, string endpoints);

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning,
        Message = "Could not {Action} at etcd {Endpoints}, retrying in {Delay}: {Error}")]
    public static partial void EtcdUnreachable(ILogger logger, string action, string endpoints, TimeSpan delay, string error);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning,
        Message = "Flannel config not found in etcd at {Key}; waiting for it. Create it with the etcd v3 API, e.g.: {Command}")]
    public static partial void ConfigMissing(ILogger logger, string key, string command);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Information,
        Message = "Lost the race for {Key} (attempt {Races}); deciding again from fresh state")]
    public static partial void RaceLost(ILogger logger, string key, int races);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Warning,
        Message = "Lost {Races} acquisition races in a row; slowing down retries (the store keeps trying)")]
    public static partial void RaceRetriesExhausted(ILogger logger, int races);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Error, Message = "This node's lease {Key} is gone: {Detail}")]
    public static partial void OwnLeaseGone(ILogger logger, string key, string detail);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Information,
        Message = "Lease {Key} is a reservation (no TTL); it is left in place")]
    public static partial void ReservationKept(ILogger logger, string key);

    [LoggerMessage(EventId = 4007, Level = LogLevel.Warning,
        Message = "Lease {Key} was not deleted: it changed since this node wrote it (another writer owns it now)")]
    public static partial void RevokeSkipped(ILogger logger, string key);

    [LoggerMessage(EventId = 4008, Level = LogLevel.Warning,
        Message = "Reservation {Key} names this node's PublicIP but does not fit the network config; it is left alone and another subnet is leased")]
    public static partial void ReservationIncompatible(ILogger logger, string key);

    [LoggerMessage(EventId = 4009, Level = LogLevel.Warning,
        Message = "This node's previous lease {Key} does not fit the network config; deleting it")]
    public static partial void DeletingIncompatibleLease(ILogger logger, string key);

    [LoggerMessage(EventId = 4010, Level = LogLevel.Information, Message = "Found previously leased subnet {Key}, reusing")]
    public static partial void PreviousSubnetReused(ILogger logger, string key);

    [LoggerMessage(EventId = 4011, Level = LogLevel.Information, Message = "Allocated lease {Key}")]
    public static partial void LeaseCreated(ILogger logger, string key);

    [LoggerMessage(EventId = 4012, Level = LogLevel.Information,
        Message = "Found reservation {Key} for current IP {PublicIP}, using it (no TTL attached)")]
    public static partial void ReservationReused(ILogger logger, string key, IPAddress publicIP);

    [LoggerMessage(EventId = 4013, Level = LogLevel.Information, Message = "Found lease {Key} for current IP {PublicIP}, reusing")]
    public static partial void LeaseReused(ILogger logger, string key, IPAddress publicIP);

    [LoggerMessage(EventId = 4014, Level = LogLevel.Debug, Message = "Granted etcd lease {LeaseId:x} with TTL {Ttl} s")]
    public static partial void EtcdLeaseGranted(ILogger logger, long leaseId, long ttl);

    [LoggerMessage(EventId = 4015, Level = LogLevel.Warning, Message = "etcd lease {LeaseId:x} has expired or was revoked; a new one will be granted")]
    public static partial void EtcdLeaseLost(ILogger logger, long leaseId);

    [LoggerMessage(EventId = 4016, Level = LogLevel.Warning, Message = "Ignoring bad subnet node {Key}: {Problem}")]
    public static partial void BadLease(ILogger logger, string key, string problem);

    [LoggerMessage(EventId = 4017, Level = LogLevel.Warning,
        Message = "etcd canceled the watch of {Prefix} at revision {Revision} (compacted at {CompactRevision}; {Reason}); listing again")]
    public static partial void WatchCanceled(ILogger logger, string prefix, long revision, long compactRevision, string reason);

    [LoggerMessage(EventId = 4018, Level = LogLevel.Warning,
        Message = "Watch of {What} at etcd {Endpoints} interrupted, resuming from revision {Revision} in {Delay}: {Error}")]
    public static partial void WatchInterrupted(ILogger logger, string what, string endpoints, TimeSpan delay, long revision, string error);

    [LoggerMessage(EventId = 4019, Level = LogLevel.Error,
        Message = "THIS NODE'S LEASE {Key} WAS LOST ({Reason}). Acquiring a lease again, keeping the subnet if it is still free")]
    public static partial void OwnLeaseLost(ILogger logger, string key, string reason);

    [LoggerMessage(EventId = 4020, Level = LogLevel.Warning, Message = "Acquired lease {Key} again after losing {OldKey}")]
    public static partial void OwnLeaseReacquired(ILogger logger, string key, string oldKey);

    [LoggerMessage(EventId = 4021, Level = LogLevel.Debug, Message = "Renewed lease {Key} until {Expiration}")]
    public static partial void LeaseRenewed(ILogger logger, string key, DateTimeOffset expiration);

    [LoggerMessage(EventId = 4022, Level = LogLevel.Information, Message = "Watching {Key} on etcd {Endpoint} from revision {Revision}")]
    public static partial void WatchOpened(ILogger logger, string key, string endpoint, long revision);
}
