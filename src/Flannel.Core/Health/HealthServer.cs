using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Flannel.Health;

/// <summary>
/// flanneld's health endpoint: <c>GET /healthz</c> → 200 <c>flanneld is running</c>; <c>GET /readyz</c> → 200
/// <c>flanneld is ready</c> or 503 <c>flanneld is not ready yet</c>. A deliberately tiny HTTP/1.1 responder over a
/// socket (one request per connection, <c>Connection: close</c>), so that Flannel.Core needs no web framework. The
/// reason for not being ready goes in an <c>X-Flannel-Not-Ready</c> header; the body keeps flannel's exact text.
/// </summary>
public sealed partial class HealthServer : IHostedService, IAsyncDisposable
{
    /// <summary>Body of <c>/healthz</c>.</summary>
    public const string RunningText = "flanneld is running";

    /// <summary>Body of <c>/readyz</c> when ready.</summary>
    public const string ReadyText = "flanneld is ready";

    /// <summary>Body of <c>/readyz</c> when not ready.</summary>
    public const string NotReadyText = "flanneld is not ready yet";

    private const int MaxRequestHeaderBytes = 8192;
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(5);

    private readonly FlannelHealth _health;
    private readonly HealthServerOptions _options;
    private readonly ILogger<HealthServer> _logger;
    private readonly CancellationTokenSource _stopping = new();
    private Socket? _listener;
    private Task? _acceptLoop;

    /// <summary>Creates the server; it listens once started, unless the port is 0.</summary>
    public HealthServer(FlannelHealth health, IOptions<HealthServerOptions> options, ILogger<HealthServer> logger)
    {
        ArgumentNullException.ThrowIfNull(health);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        _health = health;
        _options = options.Value;
        _logger = logger;
    }

    /// <summary>The bound endpoint once started; null when disabled.</summary>
    public IPEndPoint? LocalEndPoint { get; private set; }

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_options.Port == 0)
        {
            return Task.CompletedTask;
        }

        if (!IPAddress.TryParse(_options.Address, out IPAddress? address))
        {
            throw new InvalidOperationException($"invalid --healthz-ip '{_options.Address}': not an IP address");
        }

        if (_options.Port is < 0 or > 65535)
        {
            throw new InvalidOperationException($"invalid --healthz-port {_options.Port}: must be 0..65535");
        }

        var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(new IPEndPoint(address, _options.Port));
            listener.Listen(16);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        _listener = listener;
        LocalEndPoint = (IPEndPoint)listener.LocalEndPoint!;
        LogListening(_logger, LocalEndPoint);
        _acceptLoop = AcceptLoopAsync(listener, _stopping.Token);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        if (_acceptLoop is not null)
        {
            await _acceptLoop.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        if (_acceptLoop is not null)
        {
            await _acceptLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _stopping.Dispose();
    }

    /// <summary>Builds the full response to a request line (method and target); exposed for tests.</summary>
    internal (int Status, string Reason, string Body, string? NotReadyReason) Respond(string method, string target)
    {
        string path = target.Split('?', 2)[0];
        if (method is not ("GET" or "HEAD"))
        {
            return (405, "Method Not Allowed", "method not allowed", null);
        }

        switch (path)
        {
            case "/healthz":
                return (200, "OK", RunningText, null);
            case "/readyz":
                string? reason = _health.NotReadyReason;
                return reason is null ? (200, "OK", ReadyText, null) : (503, "Service Unavailable", NotReadyText, reason);
            default:
                return (404, "Not Found", "404 page not found", null);
        }
    }

    private async Task AcceptLoopAsync(Socket listener, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException || cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException ex)
            {
                LogAcceptFailed(_logger, ex);
                continue;
            }

            // Requests are tiny; serve each on its own task so a slow client never blocks the probe.
            _ = ServeAsync(client, cancellationToken);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken cancellationToken)
    {
        using (client)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(RequestTimeout);
            try
            {
                string? requestLine = await ReadRequestHeadAsync(client, timeout.Token).ConfigureAwait(false);
                if (requestLine is null)
                {
                    return;
                }

                string[] parts = requestLine.Split(' ');
                (int status, string reasonPhrase, string body, string? notReady) = parts.Length == 3
                    ? Respond(parts[0], parts[1])
                    : (400, "Bad Request", "bad request", null);
                byte[] bodyBytes = Encoding.UTF8.GetBytes(body);
                var head = new StringBuilder()
                    .Append(CultureInfo.InvariantCulture, $"HTTP/1.1 {status} {reasonPhrase}\r\n")
                    .Append("Content-Type: text/plain; charset=utf-8\r\n")
                    .Append(CultureInfo.InvariantCulture, $"Content-Length: {bodyBytes.Length}\r\n")
                    .Append("Connection: close\r\n");
                if (notReady is not null)
                {
                    head.Append("X-Flannel-Not-Ready: ").Append(Sanitize(notReady)).Append("\r\n");
                }

                head.Append("\r\n");
                byte[] response = Encoding.ASCII.GetBytes(head.ToString());
                await client.SendAsync(response, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                if (parts.Length != 3 || parts[0] != "HEAD")
                {
                    await client.SendAsync(bodyBytes, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                }

                client.Shutdown(SocketShutdown.Both);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                // A client that disconnects or stalls is its own problem; the endpoint keeps serving others.
            }
        }
    }

    /// <summary>Reads up to the blank line ending the request head and returns the request line.</summary>
    private static async Task<string?> ReadRequestHeadAsync(Socket client, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[MaxRequestHeaderBytes];
        int length = 0;
        while (length < buffer.Length)
        {
            int read = await client.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            length += read;
            if (buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8) >= 0 || buffer.AsSpan(0, length).IndexOf("\n\n"u8) >= 0)
            {
                break;
            }
        }

        int lineEnd = buffer.AsSpan(0, length).IndexOf((byte)'\n');
        if (lineEnd <= 0)
        {
            return null;
        }

        return Encoding.ASCII.GetString(buffer, 0, lineEnd).TrimEnd('\r');
    }

    private static string Sanitize(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (char c in text)
        {
            builder.Append(c is >= ' ' and <= '~' ? c : '?');
        }

        return builder.ToString();
    }

    [LoggerMessage(EventId = 7150, Level = LogLevel.Information, Message = "Health endpoint listening on http://{EndPoint} (/healthz, /readyz)")]
    private static partial void LogListening(ILogger logger, IPEndPoint endPoint);

    [LoggerMessage(EventId = 7151, Level = LogLevel.Warning, Message = "Health endpoint failed to accept a connection")]
    private static partial void LogAcceptFailed(ILogger logger, Exception exception);
}
