using System.Net;

namespace Flannel.Subnets;

/// <summary>
/// The value a node publishes with its subnet lease: flannel's lease JSON
/// (<c>{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{...}}</c>).
/// </summary>
/// <remarks>
/// Backend data is kept as compact raw JSON text so that two attributes compare equal exactly when
/// flannel would write the same bytes. Serialisation lives in <see cref="LeaseJson"/>.
/// </remarks>
public sealed record LeaseAttributes
{
    /// <summary>The node's IPv4 tunnel endpoint; <see cref="IPAddress.Any"/> (<c>"0.0.0.0"</c>) when the node has none.</summary>
    public IPAddress PublicIP { get; init; } = IPAddress.Any;

    /// <summary>The node's IPv6 tunnel endpoint, or <see langword="null"/> (written as JSON <c>null</c>).</summary>
    public IPAddress? PublicIPv6 { get; init; }

    /// <summary>The backend that owns the lease, such as <c>vxlan</c> or <c>host-gw</c>; omitted from JSON when null.</summary>
    /// <remarks>
    /// A built-in type name is kept as the one shared string, not as the copy each lease was read with: an agent keeps
    /// every peer's lease, and 5,000 copies of <c>"vxlan"</c> are 160 KB.
    /// </remarks>
    public string? BackendType { get; init => field = Shared(value); }

    /// <summary>The backend's IPv4 data as compact raw JSON, e.g. <c>{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}</c>.</summary>
    public string? BackendData { get; init; }

    /// <summary>The backend's IPv6 data as compact raw JSON.</summary>
    public string? BackendV6Data { get; init; }

    private static string? Shared(string? type)
    {
        foreach (string builtIn in Flannel.Configuration.NetworkConfig.BuiltInBackendTypes)
        {
            if (string.Equals(type, builtIn, StringComparison.Ordinal))
            {
                return builtIn;
            }
        }

        return type;
    }
}
