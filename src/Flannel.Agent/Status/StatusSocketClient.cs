using System.Net.Sockets;
using System.Text.Json;

namespace Flannel.Agent.Status;

/// <summary>The agent did not answer the status request, or answered with an error.</summary>
public sealed class StatusUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public StatusUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public StatusUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception.</summary>
    public StatusUnavailableException()
        : this("the agent's status is unavailable")
    {
    }
}

/// <summary>Reads an agent's <see cref="FabricStatus"/> from its unix socket (what <c>flanneld status</c> does).</summary>
public static class StatusSocketClient
{
    /// <summary>The largest answer read (a 5,000-peer status is about 8 MiB).</summary>
    public const int MaxResponseLength = 256 * 1024 * 1024;

    /// <summary>Sends <c>status</c> and returns the raw JSON document.</summary>
    /// <exception cref="StatusUnavailableException">No agent listens on <paramref name="path"/>, it answered with an
    /// error, or the answer is not a status document.</exception>
    public static async Task<byte[]> GetStatusJsonAsync(string path, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), deadline.Token).ConfigureAwait(false);
            await socket.SendAsync("status\n"u8.ToArray(), SocketFlags.None, deadline.Token).ConfigureAwait(false);
            using var body = new MemoryStream();
            byte[] buffer = new byte[64 * 1024];
            while (true)
            {
                int read = await socket.ReceiveAsync(buffer, SocketFlags.None, deadline.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                if (body.Length + read > MaxResponseLength)
                {
                    throw new StatusUnavailableException($"the answer on {path} is larger than {MaxResponseLength} bytes");
                }

                body.Write(buffer, 0, read);
            }

            byte[] json = body.ToArray();
            ThrowIfError(json, path);
            return json;
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressNotAvailable or SocketError.ConnectionRefused)
        {
            throw new StatusUnavailableException($"no agent answers on {path} ({e.Message}); is flanneld running, and with --status-socket={path}?", e);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AccessDenied)
        {
            throw new StatusUnavailableException($"permission denied on {path}: the status socket is readable by root only", e);
        }
        catch (SocketException e)
        {
            throw new StatusUnavailableException($"cannot read the status from {path}: {e.Message}", e);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new StatusUnavailableException($"the agent on {path} did not answer within {timeout.TotalSeconds:0.#} s", e);
        }
    }

    /// <summary>Sends <c>status</c> and parses the answer.</summary>
    /// <exception cref="StatusUnavailableException">As <see cref="GetStatusJsonAsync"/>.</exception>
    public static async Task<FabricStatus> GetStatusAsync(string path, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        byte[] json = await GetStatusJsonAsync(path, timeout, cancellationToken).ConfigureAwait(false);
        try
        {
            return JsonSerializer.Deserialize(json, FabricStatusJsonContext.Default.FabricStatus)
                ?? throw new StatusUnavailableException($"the agent on {path} sent an empty status");
        }
        catch (JsonException e)
        {
            throw new StatusUnavailableException($"the agent on {path} sent a status this flanneld cannot read: {e.Message}", e);
        }
    }

    private static void ThrowIfError(byte[] json, string path)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(json);
            if (document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("error", out JsonElement error))
            {
                throw new StatusUnavailableException($"the agent on {path} refused the request: {error.GetString()}");
            }
        }
        catch (JsonException e)
        {
            throw new StatusUnavailableException($"the agent on {path} did not answer with JSON: {e.Message}", e);
        }
    }
}
