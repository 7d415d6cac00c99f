using System.Net;
using System.Text.Json;
using Flannel.Agent.Probing;
using Flannel.Backends;
using Flannel.Subnets;

namespace Flannel.Agent.Status;

/// <summary>Builds the parts of a <see cref="FabricStatus"/> from the agent's model (leases, probe results, kernel state).</summary>
public static class FabricStatusBuilder
{
    /// <summary>A lease as the status shows it (addresses as text, backend data as JSON when it is JSON).</summary>
    public static LeaseStatus ToLeaseStatus(Lease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        LeaseAttributes attributes = lease.Attributes;
        return new LeaseStatus
        {
            Key = lease.Key,
            Subnet = lease.Subnet?.ToString(),
            IPv6Subnet = lease.IPv6Subnet?.ToString(),
            PublicIP = attributes.PublicIP.Equals(IPAddress.Any) ? null : attributes.PublicIP.ToString(),
            PublicIPv6 = attributes.PublicIPv6?.ToString(),
            BackendType = attributes.BackendType,
            BackendData = ParseJson(attributes.BackendData),
            Expiration = lease.Expiration,
        };
    }

    /// <summary>
    /// A peer's overall health from its two paths: reachable when the overlay answers (the underlay, for a backend
    /// without an overlay device); an overlay-only failure when the overlay does not answer and the underlay does;
    /// unreachable when neither does; unknown until the deciding path has a state.
    /// </summary>
    public static PeerHealth HealthOf(PathStatus? overlay, PathStatus? underlay)
    {
        PathStatus? deciding = overlay ?? underlay;
        return deciding?.State switch
        {
            Reachability.Reachable => PeerHealth.Reachable,
            Reachability.Unreachable when overlay is not null && underlay?.State == Reachability.Reachable => PeerHealth.OverlayOnlyFailure,
            Reachability.Unreachable => PeerHealth.Unreachable,
            _ => PeerHealth.Unknown,
        };
    }

    /// <summary>One peer's status.</summary>
    public static PeerStatus ToPeerStatus(Lease lease, PeerKernelStatus kernel, PathStatus? overlay, PathStatus? underlay)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(kernel);
        return new PeerStatus
        {
            Lease = ToLeaseStatus(lease),
            Kernel = kernel,
            Overlay = overlay,
            Underlay = underlay,
            Health = HealthOf(overlay, underlay),
        };
    }

    private static JsonElement? ParseJson(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        try
        {
            using JsonDocument document = JsonDocument.Parse(text);
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            // Another writer's data that is not JSON: the status shows no backend data rather than failing.
            return null;
        }
    }
}
