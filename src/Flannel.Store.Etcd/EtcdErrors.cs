using System.Security.Authentication;
using Grpc.Core;

namespace Flannel.Store.Etcd;

/// <summary>
/// etcd could not be used for a reason that retrying will not fix: the TLS handshake failed (no or wrong
/// client certificate, untrusted server), the user name or password is wrong, or the user lacks permission.
/// The message says which, and which option to check.
/// </summary>
public sealed class EtcdConnectionException : Exception
{
    /// <summary>Creates the exception.</summary>
    public EtcdConnectionException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public EtcdConnectionException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public EtcdConnectionException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The node's lease was deleted or taken over by another writer and could not be renewed.</summary>
public sealed class EtcdLeaseLostException : Exception
{
    /// <summary>Creates the exception.</summary>
    public EtcdLeaseLostException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public EtcdLeaseLostException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public EtcdLeaseLostException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>Sorts etcd call failures into "retry with backoff" and "tell the user".</summary>
internal static class EtcdErrors
{
    /// <summary>
    /// Returns a clear exception when <paramref name="exception"/> cannot be fixed by retrying, or null when it
    /// is transient (member down, connection reset, deadline exceeded, no leader).
    /// </summary>
    public static EtcdConnectionException? AsPermanent(Exception exception, string endpoints)
    {
        if (exception is EtcdConnectionException known)
        {
            return known;
        }

        if (FindTlsFailure(exception) is { } tls)
        {
            return new EtcdConnectionException(
                $"TLS handshake with etcd at {endpoints} failed: {tls.Message}. Check CaFile (the CA that signed etcd's " +
                "server certificate) and, when etcd requires client certificates (--client-cert-auth), CertFile and KeyFile.",
                exception);
        }

        if (exception is RpcException rpc)
        {
            switch (rpc.StatusCode)
            {
                case StatusCode.Unauthenticated when !rpc.Status.Detail.Contains("invalid auth token", StringComparison.OrdinalIgnoreCase):
                    return new EtcdConnectionException(
                        $"etcd at {endpoints} rejected the credentials: {rpc.Status.Detail}. Check Username and Password.", exception);
                case StatusCode.PermissionDenied:
                    return new EtcdConnectionException(
                        $"etcd at {endpoints} denied the request: {rpc.Status.Detail}. The user needs read-write permission on the prefix.",
                        exception);
                case StatusCode.InvalidArgument when rpc.Status.Detail.Contains("authentication failed", StringComparison.OrdinalIgnoreCase):
                    return new EtcdConnectionException(
                        $"etcd at {endpoints} rejected the credentials: {rpc.Status.Detail}. Check Username and Password.", exception);
                case StatusCode.FailedPrecondition when rpc.Status.Detail.Contains("user name is empty", StringComparison.OrdinalIgnoreCase):
                    return new EtcdConnectionException(
                        $"etcd at {endpoints} has authentication enabled: set Username and Password.", exception);
                case StatusCode.InvalidArgument when rpc.Status.Detail.Contains("user name is empty", StringComparison.OrdinalIgnoreCase):
                    return new EtcdConnectionException(
                        $"etcd at {endpoints} has authentication enabled: set Username and Password.", exception);
            }
        }

        return null;
    }

    /// <summary>True when the failure is etcd's "requested lease not found" (the etcd lease expired or was revoked).</summary>
    public static bool IsLeaseNotFound(Exception exception) =>
        exception is RpcException { StatusCode: StatusCode.NotFound } rpc
        && rpc.Status.Detail.Contains("lease not found", StringComparison.OrdinalIgnoreCase);

    /// <summary>True for failures that a retry can fix (everything a store loop should back off and retry on).</summary>
    public static bool IsTransient(Exception exception, string endpoints) =>
        exception is RpcException or IOException or HttpRequestException or TimeoutException
        && AsPermanent(exception, endpoints) is null;

    /// <summary>
    /// True when a TLS server closed the connection right after the TLS handshake, before HTTP/2 started. With
    /// TLS 1.3 this is how etcd (<c>--client-cert-auth</c>) rejects a missing or untrusted client certificate:
    /// the client's handshake completes, then the server sends an alert and hangs up.
    /// </summary>
    public static bool IsClosedAfterTlsHandshake(Exception exception)
    {
        for (Exception? e = exception; e is not null; e = e is RpcException r && r.Status.DebugException is { } d ? d : e.InnerException)
        {
            if (e.Message.Contains("did not complete the HTTP/2 handshake", StringComparison.Ordinal))
            {
                return true;
            }
        }

        return exception is RpcException rpc && rpc.Status.Detail.Contains("did not complete the HTTP/2 handshake", StringComparison.Ordinal);
    }

    private static AuthenticationException? FindTlsFailure(Exception exception)
    {
        for (Exception? e = exception; e is not null; e = e is RpcException r && r.Status.DebugException is { } d ? d : e.InnerException)
        {
            if (e is AuthenticationException tls)
            {
                return tls;
            }
        }

        return null;
    }
}
