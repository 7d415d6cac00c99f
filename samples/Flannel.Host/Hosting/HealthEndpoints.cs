using System.Text;
using Flannel.Agent.Health;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Flannel.Host.Hosting;

/// <summary>
/// flanneld's health endpoint (<c>--healthz-ip</c>, <c>--healthz-port</c>) on Kestrel: <c>/healthz</c> → 200
/// <c>flanneld is running</c>; <c>/readyz</c> → 200 <c>flanneld is ready</c>, or 503 <c>flanneld is not ready yet</c>
/// with the reason in an <c>X-Flannel-Not-Ready</c> header (the body keeps flannel's exact text). Readiness is the
/// agent's <see cref="FlannelReadinessHealthCheck"/>, evaluated by the health check service.
/// </summary>
internal static class HealthEndpoints
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

    /// <summary>
    /// Adds <c>/readyz</c> (the health check middleware), then a terminal handler for <c>/healthz</c>, <c>/status</c>
    /// when <paramref name="status"/>, and Go's <c>404 page not found</c> for anything else. Paths match exactly and
    /// case-sensitively, and every method is answered, as Go's <c>http.HandleFunc</c> does.
    /// </summary>
    public static void Use(IApplicationBuilder app, bool status)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseHealthChecks(new PathString("/readyz"), new HealthCheckOptions
        {
            Predicate = static registration => registration.Tags.Contains(FlannelReadinessHealthCheck.ReadyTag),
            ResultStatusCodes =
            {
                [HealthStatus.Healthy] = StatusCodes.Status200OK,
                [HealthStatus.Degraded] = StatusCodes.Status503ServiceUnavailable,
                [HealthStatus.Unhealthy] = StatusCodes.Status503ServiceUnavailable,
            },
            ResponseWriter = static (context, report) =>
            {
                if (report.Status == HealthStatus.Healthy)
                {
                    return WriteText(context, null, ReadyText);
                }

                string reason = report.Entries.Values.Select(e => e.Description ?? e.Exception?.Message).FirstOrDefault(d => d is not null)
                    ?? "not ready";
                context.Response.Headers[NotReadyHeader] = Sanitize(reason);
                return WriteText(context, null, NotReadyText);
            },
        });
        app.Run(context => context.Request.Path.Value switch
        {
            "/healthz" => WriteText(context, StatusCodes.Status200OK, RunningText),
            "/status" when status => WriteStatus(context),
            _ => WriteText(context, StatusCodes.Status404NotFound, "404 page not found\n"),
        });
    }

    private static Task WriteText(HttpContext context, int? status, string text)
    {
        if (status is int code)
        {
            context.Response.StatusCode = code;
        }

        context.Response.ContentType = TextPlain;
        return context.Response.WriteAsync(text, context.RequestAborted);
    }

    /// <summary>
    /// <c>/status</c> (<c>--status-http</c>): the agent's fabric status, the same JSON document as on its unix socket.
    /// Off by default: the health port usually listens on every address, and the status names every node.
    /// </summary>
    private static async Task WriteStatus(HttpContext context)
    {
        Flannel.Agent.Status.IFabricStatus status = context.RequestServices.GetRequiredService<Flannel.Agent.Status.IFabricStatus>();
        context.Response.ContentType = "application/json; charset=utf-8";
        await status.GetStatus().WriteJsonAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
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
}
