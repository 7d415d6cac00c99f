using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;
using Flannel.Subnets;

namespace Flannel.Store.Kube.Internal;

/// <summary>
/// Turns a peer's Node into a lease (flannel's <c>nodeToLease</c>): the public IP and backend data of each enabled
/// family from the annotations, the subnets from the pod CIDRs, the backend type. Unlike flannel, a bad value
/// yields a problem naming the node and the field instead of a lease with zero values.
/// </summary>
internal sealed class PeerLeaseReader(AnnotationNames names, bool enableIPv4, bool enableIPv6)
{
    /// <summary>True when the node runs a kube-mode flannel (<c>kube-subnet-manager: "true"</c>); other nodes are ignored.</summary>
    public bool IsManaged(KubeNode node) => NodeFields.Annotation(node, names.KubeSubnetManager) == "true";

    public bool TryRead(KubeNode node, [NotNullWhen(true)] out Lease? lease, [NotNullWhen(false)] out string? problem)
    {
        lease = null;
        string name = node.Name;
        IPNetwork? subnet4, subnet6;
        try
        {
            if (!NodeFields.TryGetPodCidrs(node, out subnet4, out subnet6))
            {
                problem = "spec.podCIDR is not assigned";
                return false;
            }
        }
        catch (FormatException e)
        {
            problem = e.Message;
            return false;
        }

        IPAddress publicIP = IPAddress.Any;
        IPAddress? publicIPv6 = null;
        string? backendData = null, backendV6Data = null;
        if (enableIPv4)
        {
            if (subnet4 is null)
            {
                problem = $"spec.podCIDRs \"{NodeFields.DescribePodCidrs(node)}\" has no IPv4 CIDR but the network enables IPv4";
                return false;
            }

            if (!TryReadAddress(node, names.PublicIP, AddressFamily.InterNetwork, out publicIP!, out problem)
                || !TryReadBackendData(node, names.BackendData, out backendData, out problem))
            {
                return false;
            }
        }

        if (enableIPv6)
        {
            if (subnet6 is null)
            {
                problem = $"spec.podCIDRs \"{NodeFields.DescribePodCidrs(node)}\" has no IPv6 CIDR but the network enables IPv6";
                return false;
            }

            if (!TryReadAddress(node, names.PublicIPv6, AddressFamily.InterNetworkV6, out publicIPv6, out problem)
                || !TryReadBackendData(node, names.BackendV6Data, out backendV6Data, out problem))
            {
                return false;
            }
        }

        string? backendType = NodeFields.Annotation(node, names.BackendType);
        lease = new Lease
        {
            Subnet = enableIPv4 ? subnet4 : null,
            IPv6Subnet = enableIPv6 ? subnet6 : null,
            Attributes = new LeaseAttributes
            {
                PublicIP = publicIP,
                PublicIPv6 = publicIPv6,
                BackendType = string.IsNullOrEmpty(backendType) ? null : backendType,
                BackendData = backendData,
                BackendV6Data = backendV6Data,
            },

            // Kubernetes leases do not expire: a node's subnet is its podCIDR for as long as the node exists.
            Expiration = null,
            CreateRevision = node.CreationOrder,
        };
        problem = null;
        return true;
    }

    private static bool TryReadAddress(
        KubeNode node, string annotation, AddressFamily family, [NotNullWhen(true)] out IPAddress? address, [NotNullWhen(false)] out string? problem)
    {
        string? text = NodeFields.Annotation(node, annotation);
        if (NodeFields.TryParseAddress(text, family, out address))
        {
            problem = null;
            return true;
        }

        string kind = family == AddressFamily.InterNetwork ? "IPv4" : "IPv6";
        problem = text is null
            ? $"annotation {annotation} is missing"
            : $"annotation {annotation} \"{text}\" is not an {kind} address";
        return false;
    }

    private static bool TryReadBackendData(KubeNode node, string annotation, out string? data, [NotNullWhen(false)] out string? problem)
    {
        string? text = NodeFields.Annotation(node, annotation);
        problem = null;

        // host-gw publishes the JSON literal null; an absent annotation means the same.
        if (string.IsNullOrEmpty(text) || text == "null")
        {
            data = null;
            return true;
        }

        if (!NodeFields.IsJson(text))
        {
            data = null;
            problem = $"annotation {annotation} \"{text}\" is not valid JSON";
            return false;
        }

        data = text;
        return true;
    }
}
