using System.Net;
using System.Text;
using Flannel.Agent.Health;
using Flannel.Agent.Status;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Flannel.Host.Hosting;

/// <summary>
/// flanneld's health server (<c>--healthz-ip</c>, <c>--healthz-port</c>) on <see cref="HttpListener"/>:
/// <c>/healthz</c> → 200 <c>flanneld is running</c>; <c>/readyz</c> → 200 <c>flanneld is ready</c>, or 503
/// <c>flanneld is not ready yet</c> with the reason in an <c>X-Flannel-Not-Ready</c> header (the body keeps flannel's
/// exact text); with <c>--status-http</c>, <c>/status</c>; Go's <c>404 page not found</c> for anything else.
/// Readiness is the agent's <see cref="FlannelReadinessHealthCheck"/>, evaluated by the health check service.
/// </summary>
/// <remarks>
/// <para>
/// Not Kestrel: ASP.NET Core made the native flanneld several MB larger and added about 9 MiB of RSS for four
/// plain-text answers. <c>/metrics</c> is served on the same port by OpenTelemetry's own HttpListener exporter
/// (<see cref="MetricsEndpoint"/>): the managed HttpListener shares one socket per address and port between every
/// listener of the process and routes each request to the longest matching prefix, so <c>/metrics/</c> goes there
/// and every other path here.
/// </para>
/// <para>
/// HttpListener routes by the request's Host header: with a specific <c>--healthz-ip</c> a request must name that
/// address (as kubelet's probes and Prometheus's scrapes of the node's IP do); a host name that resolves to it gets
/// HttpListener's own 404. The default 0.0.0.0 accepts any Host, on IPv4 and IPv6, as Go's listener does.
/// </para>
/// </remarks>
internal sealed partial class HealthServer : IHostedService, IDisposable
{
    /// <summary>Body of <c>/healthz</c>.</summary>
    public const string RunningText = "flanneld is running";

    /// <summary>Body of <c>/readyz</c> when ready.</summary>
    public const string ReadyText = "flanneld is ready";

    /// <summary>Body of <c>/readyz</c> when not ready.</summary>
    public const string NotReadyText = "flanneld is not ready yet";

    /// <summary>The header that carries why the agent is not ready.</summary>
    public const string NotReadyHeader = "X-Flannel-Not-Ready";

    private const string TextPlain = "text/plain; charset=utf-8";

    private readonly HttpListener _listener = new() { IgnoreWriteExceptions = true };
    private readonly HealthCheckService _healthChecks;
    private readonly IFabricStatus? _status;
    private readonly ILogger _logger;
    private readonly string _address;
    private readonly CancellationTokenSource _stopping = new();
    private Task _accepting = Task.CompletedTask;

    /// <param name="address">--healthz-ip.</param>
    /// <param name="port">--healthz-port.</param>
    /// <param name="healthChecks">Evaluates the checks tagged <see cref="FlannelReadinessHealthCheck.ReadyTag"/>.</param>
    /// <param name="status">With <c>--status-http</c>, what <c>/status</c> serves; null: no <c>/status</c>.</param>
    /// <param name="logger">Logs the address at start and failed requests.</param>
    public HealthServer(IPAddress address, int port, HealthCheckService healthChecks, IFabricStatus? status, ILogger<HealthServer> logger)
    {
        ArgumentNullException.ThrowIfNull(address);
        _healthChecks = healthChecks;
        _status = status;
        _logger = logger;
        Host = PrefixHost(address);
        Port = port;
        _address = $"{(address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString())}:{port}";
    }

    /// <summary>The host part of every prefix on this port: <c>+</c> (any address, any Host header) or the IP.</summary>
    public string Host { get; }

    /// <summary>The port served.</summary>
    public int Port { get; }

    /// <summary>The host of an HttpListener prefix for <paramref name="address"/> (0.0.0.0 and :: mean every address).</summary>
    public static string PrefixHost(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
        {
            return "+";
        }

        return address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _listener.Prefixes.Add($"http://{Host}:{Port}/");
        try
        {
            _listener.Start();
        }
        catch (HttpListenerException e)
        {
            // As Kestrel's bind failure did: the host does not start and flanneld exits 1 with the reason.
            throw new InvalidOperationException($"cannot serve healthz on {_address}: {e.Message}", e);
        }

        LogListening(_logger, _address);
        _accepting = AcceptAsync(_stopping.Token);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        await _accepting.ConfigureAwait(false);
    }

    public void Dispose()
    {
        _listener.Close();
        _stopping.Dispose();
    }

    private async Task AcceptAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                // The listener broke: stop answering, so that the liveness probe fails and the node's flanneld restarts.
                LogAcceptFailed(_logger, _address, e.Message);
                return;
            }

            _ = Task.Run(() => RespondAsync(context, stopping), CancellationToken.None);
        }
    }

    private async Task RespondAsync(HttpListenerContext context, CancellationToken stopping)
    {
        HttpListenerResponse response = context.Response;
        try
        {
            // Go's http.HandleFunc answers every method on /healthz and /readyz; so do these.
            switch (context.Request.Url?.AbsolutePath)
            {
                case "/healthz":
                    await WriteTextAsync(response, 200, RunningText).ConfigureAwait(false);
                    break;
                case "/readyz":
                    await ReadyzAsync(response, stopping).ConfigureAwait(false);
                    break;
                case "/status" when _status is not null:
                    await StatusAsync(context.Request, response, _status, stopping).ConfigureAwait(false);
                    break;
                default:
                    await WriteTextAsync(response, 404, "404 page not found\n").ConfigureAwait(false);
                    break;
            }
        }
        catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            // The client went away, or we are stopping: nothing to answer.
            LogRequestFailed(_logger, context.Request.Url?.AbsolutePath, e.Message);
        }
        finally
        {
            try
            {
                response.Close();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                // Already aborted.
            }
        }
    }

    private async Task ReadyzAsync(HttpListenerResponse response, CancellationToken stopping)
    {
        HealthReport report = await _healthChecks.CheckHealthAsync(
            static registration => registration.Tags.Contains(FlannelReadinessHealthCheck.ReadyTag), stopping).ConfigureAwait(false);
        if (report.Status == HealthStatus.Healthy)
        {
            await WriteTextAsync(response, 200, ReadyText).ConfigureAwait(false);
            return;
        }

        string reason = report.Entries.Values.Select(e => e.Description ?? e.Exception?.Message).FirstOrDefault(d => d is not null)
            ?? "not ready";
        response.Headers[NotReadyHeader] = Sanitize(reason);
        await WriteTextAsync(response, 503, NotReadyText).ConfigureAwait(false);
    }

    /// <summary>
    /// <c>/status</c> (<c>--status-http</c>): the agent's fabric status, the same JSON document as on its unix socket,
    /// to GET (and HEAD). Off by default: the health port usually listens on every address, and the status names
    /// every node.
    /// </summary>
    private static async Task StatusAsync(HttpListenerRequest request, HttpListenerResponse response, IFabricStatus status, CancellationToken stopping)
    {
        if (request.HttpMethod is not ("GET" or "HEAD"))
        {
            response.Headers["Allow"] = "GET, HEAD";
            await WriteTextAsync(response, 405, "405 method not allowed\n").ConfigureAwait(false);
            return;
        }

        using MemoryStream json = new();
        await status.GetStatus().WriteJsonAsync(json, stopping).ConfigureAwait(false);
        response.StatusCode = 200;
        response.ContentType = "application/json; charset=utf-8";
        response.ContentLength64 = json.Length;
        if (request.HttpMethod == "GET")
        {
            await response.OutputStream.WriteAsync(json.GetBuffer().AsMemory(0, (int)json.Length), stopping).ConfigureAwait(false);
        }
    }

    private static async Task WriteTextAsync(HttpListenerResponse response, int status, string text)
    {
        byte[] body = Encoding.UTF8.GetBytes(text);
        response.StatusCode = status;
        response.ContentType = TextPlain;
        response.ContentLength64 = body.Length;
        await response.OutputStream.WriteAsync(body).ConfigureAwait(false);
    }

    /// <summary>Header values must be printable ASCII; anything else becomes '?'.</summary>
    private static string Sanitize(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (char c in text)
        {
            builder.Append(c is >= ' ' and <= '~' ? c : '?');
        }

        return builder.ToString();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Start healthz server on {Address}")]
    private static partial void LogListening(ILogger logger, string address);

    [LoggerMessage(Level = LogLevel.Error, Message = "healthz server on {Address} stopped: {Reason}")]
    private static partial void LogAcceptFailed(ILogger logger, string address, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "healthz: the request for {Path} ended early: {Reason}")]
    private static partial void LogRequestFailed(ILogger logger, string? path, string reason);
}
