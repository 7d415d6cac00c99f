using System.Net;

namespace Flannel.Health;

/// <summary>Where flanneld's health endpoint listens (<c>--healthz-ip</c>, <c>--healthz-port</c>).</summary>
public sealed class HealthServerOptions
{
    /// <summary>The address to bind; flanneld's default is <c>0.0.0.0</c>.</summary>
    public string Address { get; set; } = "0.0.0.0";

    /// <summary>The TCP port; 0 (flanneld's default) disables the endpoint.</summary>
    public int Port { get; set; }
}
