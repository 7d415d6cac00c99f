using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Flannel.Netlink;

namespace Flannel.Backends.Vxlan;

/// <summary>
/// Gives each peer gateway a stable nexthop object id. An IPv4 gateway's id is its address as a number
/// (10.244.2.0 → 0x0AF40200), so the same peer gets the same id after a restart without any state; an IPv6
/// gateway hashes into the upper half of the id space. Ids held by anyone else are skipped, and ids of
/// existing Flannel.NET nexthops on our device are adopted for their gateway.
/// </summary>
internal sealed class NexthopIdAllocator
{
    private readonly Dictionary<IPAddress, uint> _byGateway = [];
    private readonly Dictionary<uint, IPAddress> _byId = [];
    private readonly HashSet<uint> _foreign = [];

    public uint IdFor(IPAddress gateway)
    {
        if (_byGateway.TryGetValue(gateway, out uint id))
        {
            return id;
        }

        id = Preferred(gateway);
        while (id == 0 || _byId.ContainsKey(id) || _foreign.Contains(id))
        {
            id = unchecked(id + 1);
        }

        Assign(gateway, id);
        return id;
    }

    /// <summary>Learns the nexthop objects the kernel holds before ids are handed out.</summary>
    public void Observe(IReadOnlyList<NexthopInfo> nexthops, IReadOnlyCollection<int> ourLinks)
    {
        _foreign.Clear();
        foreach (NexthopInfo nexthop in nexthops)
        {
            bool ours = nexthop.Protocol == RouteDefaults.ProtocolFlannel && nexthop.LinkIndex is { } link && ourLinks.Contains(link);
            if (!ours || nexthop.Gateway is null)
            {
                _foreign.Add(nexthop.Id);
                continue;
            }

            if (!_byGateway.ContainsKey(nexthop.Gateway) && !_byId.ContainsKey(nexthop.Id))
            {
                Assign(nexthop.Gateway, nexthop.Id);
            }
        }

        // An id we handed out that someone else now holds must move.
        foreach (uint taken in _foreign)
        {
            if (_byId.Remove(taken, out IPAddress? gateway))
            {
                _byGateway.Remove(gateway);
            }
        }
    }

    private void Assign(IPAddress gateway, uint id)
    {
        _byGateway[gateway] = id;
        _byId[id] = gateway;
    }

    private static uint Preferred(IPAddress gateway)
    {
        Span<byte> bytes = stackalloc byte[16];
        gateway.TryWriteBytes(bytes, out int written);
        if (gateway.AddressFamily == AddressFamily.InterNetwork)
        {
            return BinaryPrimitives.ReadUInt32BigEndian(bytes);
        }

        uint hash = 2166136261; // FNV-1a
        foreach (byte b in bytes[..written])
        {
            hash = unchecked((hash ^ b) * 16777619);
        }

        return hash | 0x8000_0000;
    }
}
