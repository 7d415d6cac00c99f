using System.Net;
using System.Net.Sockets;
using Flannel.Backends.WireGuard.Keys;
using Flannel.Configuration;
using Flannel.Netlink;
using Flannel.Netlink.WireGuard;
using Flannel.Subnets;
using Microsoft.Extensions.Logging;

namespace Flannel.Backends.WireGuard.Devices;

/// <summary>One WireGuard device of the network: <c>flannel-wg</c> (and <c>flannel-wg-v6</c> in separate mode).</summary>
/// <param name="Name">The device name.</param>
/// <param name="ListenPort">The UDP port it listens on (ListenPort, or ListenPortV6 for <c>flannel-wg-v6</c>).</param>
/// <param name="Families">The pod address families it carries: one in separate mode, both in the single-device modes.</param>
internal sealed record WireGuardDeviceSpec(string Name, ushort ListenPort, IReadOnlyList<AddressFamily> Families)
{
    /// <summary>flannel's IPv4 (or only) device.</summary>
    public const string DefaultName = "flannel-wg";

    /// <summary>flannel's IPv6 device in separate mode.</summary>
    public const string IPv6Name = "flannel-wg-v6";

    public bool Carries(AddressFamily family) => Families.Contains(family);
}

// Design note: which implementation carries the devices is decided once, when the network registers, the way
// wg-quick decides: ask the kernel for a wireguard link; if it refuses the link type (EOPNOTSUPP, "Unknown device
// type": no module), start wireguard-go for the device instead. A device that already exists decides for itself: a
// kernel wireguard link keeps the kernel path, a device a running wireguard-go serves keeps the userspace path (a
// restarted agent reuses either without dropping traffic), anything else with the name is deleted and recreated, as
// flannel does. Both paths then look the same to the rest of the backend: an IWireGuardControl and a link index.

/// <summary>
/// The network's WireGuard devices: chooses the control path, creates or reuses each device, and gives it this node's
/// private key, its listen port and the MTU.
/// </summary>
internal sealed partial class WireGuardDeviceSet : IAsyncDisposable
{
    private readonly INetlink _netlink;
    private readonly IWireGuardPlatform _platform;
    private readonly WireGuardKeyPair _keys;
    private readonly ILogger _logger;
    private readonly Dictionary<string, int> _indexes = new(StringComparer.Ordinal);
    private IWireGuardControl? _control;

    public WireGuardDeviceSet(INetlink netlink, IWireGuardPlatform platform, WireGuardKeyPair keys, int mtu, IReadOnlyList<WireGuardDeviceSpec> devices, ILogger logger)
    {
        _netlink = netlink;
        _platform = platform;
        _keys = keys;
        Mtu = mtu;
        Devices = devices;
        _logger = logger;
    }

    /// <summary>The devices, IPv4's first.</summary>
    public IReadOnlyList<WireGuardDeviceSpec> Devices { get; }

    /// <summary>The device MTU (the underlay MTU less WireGuard's 80 bytes).</summary>
    public int Mtu { get; }

    /// <summary>True when kernel WireGuard carries the devices, false for wireguard-go.</summary>
    public bool IsKernel { get; private set; }

    /// <summary>Why this path was chosen, for logs and status.</summary>
    public string Reason { get; private set; } = string.Empty;

    /// <summary>The control of the chosen path.</summary>
    public IWireGuardControl Control => _control ?? throw new InvalidOperationException("The WireGuard devices are not started.");

    /// <summary>The device carrying <paramref name="family"/>, or null when none does.</summary>
    public WireGuardDeviceSpec? For(AddressFamily family) => Devices.FirstOrDefault(d => d.Carries(family));

    /// <summary>The current link index of a device (it changes when the device is recreated).</summary>
    public int IndexOf(string name) => _indexes.TryGetValue(name, out int index) ? index : 0;

    /// <summary>Chooses the control path and creates or reuses every device.</summary>
    /// <exception cref="InvalidOperationException">The configured path is unavailable, or a device cannot be set up.</exception>
    public async ValueTask StartAsync(WireGuardControlPath path, CancellationToken cancellationToken)
    {
        WireGuardDeviceSpec first = Devices[0];
        await ChoosePathAsync(path, first.Name, cancellationToken).ConfigureAwait(false);
        string names = string.Join(", ", Devices.Select(d => d.Name));
        string control = Control.Description;
        LogPathChosen(_logger, IsKernel ? "kernel WireGuard" : "userspace WireGuard (wireguard-go)", names, control, Reason);

        foreach (WireGuardDeviceSpec device in Devices)
        {
            await EnsureAsync(device, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Creates the device if it is missing (or not a device of the chosen path), then sets the private key, the
    /// listen port and the MTU. Peers are left to reconciliation.
    /// </summary>
    public async ValueTask EnsureAsync(WireGuardDeviceSpec device, CancellationToken cancellationToken)
    {
        LinkInfo link = IsKernel
            ? await EnsureKernelLinkAsync(device.Name, cancellationToken).ConfigureAwait(false)
            : await EnsureUserspaceLinkAsync(device.Name, cancellationToken).ConfigureAwait(false);
        _indexes[device.Name] = link.Index;
        await Control.SetDeviceAsync(
            new WireGuardDeviceUpdate { Name = device.Name, PrivateKey = _keys.PrivateKey, ListenPort = device.ListenPort },
            cancellationToken).ConfigureAwait(false);
        if (link.Mtu != Mtu)
        {
            await _netlink.SetLinkMtuAsync(link.Index, Mtu, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Null when the device is as <see cref="EnsureAsync"/> left it; otherwise what is wrong (gone, recreated by
    /// someone, another key or port, another MTU), so the caller can repair it and replay the peers.
    /// </summary>
    public async ValueTask<string?> FindDriftAsync(WireGuardDeviceSpec device, CancellationToken cancellationToken)
    {
        LinkInfo? link = await _netlink.GetLinkAsync(device.Name, cancellationToken).ConfigureAwait(false);
        if (link is null)
        {
            return "the device is gone";
        }

        if (link.Index != IndexOf(device.Name))
        {
            return $"the device was recreated (index {IndexOf(device.Name)} -> {link.Index})";
        }

        if (IsKernel && link.Kind != "wireguard")
        {
            return $"the link is a {link.Kind ?? "device"} now, not a wireguard link";
        }

        WireGuardDevice? state = await Control.GetDeviceAsync(device.Name, cancellationToken).ConfigureAwait(false);
        if (state is null)
        {
            return IsKernel ? "the kernel no longer reports the device" : "no wireguard-go serves the device any more";
        }

        if (state.PrivateKey != _keys.PrivateKey)
        {
            return "the device has another private key";
        }

        if (state.ListenPort != device.ListenPort)
        {
            return $"the device listens on port {state.ListenPort}, not {device.ListenPort}";
        }

        return link.Mtu != Mtu ? $"the MTU is {link.Mtu}, not {Mtu}" : null;
    }

    /// <summary>
    /// Gives the device this node's addresses (the lease subnet's network address as /32 or /128, as flannel) and
    /// sets it up, and routes the whole cluster network of each family it carries through it (scope link).
    /// </summary>
    public async ValueTask ConfigureAddressesAsync(WireGuardDeviceSpec device, Lease ownLease, NetworkConfig config, CancellationToken cancellationToken)
    {
        int index = IndexOf(device.Name);
        foreach ((AddressFamily family, IPNetwork subnet, IPNetwork network) in Wanted(device, ownLease, config))
        {
            var address = new IPNetwork(subnet.BaseAddress, family == AddressFamily.InterNetwork ? 32 : 128);
            await _netlink.EnsureAddressAsync(index, address, network, cancellationToken).ConfigureAwait(false);
        }

        await _netlink.SetLinkUpAsync(index, up: true, cancellationToken).ConfigureAwait(false);
        foreach ((_, _, IPNetwork network) in Wanted(device, ownLease, config))
        {
            await _netlink.ReplaceRouteAsync(NetworkRoute(index, network), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Null when the device is up with its addresses and cluster routes; otherwise what is missing.</summary>
    public async ValueTask<string?> FindAddressDriftAsync(WireGuardDeviceSpec device, Lease ownLease, NetworkConfig config, CancellationToken cancellationToken)
    {
        int index = IndexOf(device.Name);
        LinkInfo? link = await _netlink.GetLinkAsync(index, cancellationToken).ConfigureAwait(false);
        if (link is not { IsUp: true })
        {
            return "the device is down";
        }

        foreach ((AddressFamily family, IPNetwork subnet, IPNetwork network) in Wanted(device, ownLease, config))
        {
            IReadOnlyList<AddressInfo> addresses = await _netlink.ListAddressesAsync(index, family, cancellationToken).ConfigureAwait(false);
            if (!addresses.Any(a => a.Local.Equals(subnet.BaseAddress)))
            {
                return $"the address {subnet.BaseAddress} is missing";
            }

            var filter = new RouteFilter { Family = family, Table = RouteDefaults.MainTable, Protocol = RouteDefaults.ProtocolFlannel, LinkIndex = index };
            IReadOnlyList<RouteInfo> routes = await _netlink.ListRoutesAsync(filter, cancellationToken).ConfigureAwait(false);
            if (!routes.Any(r => r.Destination == network && r.LinkIndex == index))
            {
                return $"the route to {network} is missing";
            }
        }

        return null;
    }

    private static IEnumerable<(AddressFamily Family, IPNetwork Subnet, IPNetwork Network)> Wanted(WireGuardDeviceSpec device, Lease ownLease, NetworkConfig config)
    {
        if (device.Carries(AddressFamily.InterNetwork) && ownLease.Subnet is { } subnet && config.Network is { } network)
        {
            yield return (AddressFamily.InterNetwork, subnet, network);
        }

        if (device.Carries(AddressFamily.InterNetworkV6) && ownLease.IPv6Subnet is { } subnet6 && config.IPv6Network is { } network6)
        {
            yield return (AddressFamily.InterNetworkV6, subnet6, network6);
        }
    }

    /// <summary><c>ip route replace NETWORK dev flannel-wg scope link</c>, tagged with the Flannel.NET protocol.</summary>
    private static RouteSpec NetworkRoute(int index, IPNetwork network) => new()
    {
        Destination = network,
        LinkIndex = index,
        Scope = RouteScope.Link,
        Protocol = RouteDefaults.ProtocolFlannel,
    };

    public async ValueTask DisposeAsync()
    {
        if (_control is not null && !ReferenceEquals(_control, _platform.Userspace))
        {
            await _control.DisposeAsync().ConfigureAwait(false);
        }

        await _platform.DisposeAsync().ConfigureAwait(false);
    }

    private async ValueTask ChoosePathAsync(WireGuardControlPath path, string device, CancellationToken cancellationToken)
    {
        if (path == WireGuardControlPath.Userspace)
        {
            UseUserspace("configured (ControlPath = Userspace)");
            return;
        }

        LinkInfo? existing = await _netlink.GetLinkAsync(device, cancellationToken).ConfigureAwait(false);
        if (existing is { Kind: "wireguard" })
        {
            await UseKernelAsync($"{device} already is a kernel wireguard link (index {existing.Index}); reusing it", cancellationToken).ConfigureAwait(false);
            return;
        }

        if (existing is not null && path == WireGuardControlPath.Auto
            && await _platform.Userspace.GetDeviceAsync(device, cancellationToken).ConfigureAwait(false) is not null)
        {
            UseUserspace($"wireguard-go already serves {device}; reusing it");
            return;
        }

        if (existing is not null)
        {
            LogReplacingForeignLink(_logger, device, existing.Kind ?? "device");
            await _netlink.DeleteLinkAsync(existing.Index, cancellationToken).ConfigureAwait(false);
        }

        try
        {
            await _netlink.CreateLinkAsync(new LinkSpec { Name = device, Kind = LinkKind.WireGuard }, cancellationToken).ConfigureAwait(false);
        }
        catch (NetlinkException e) when (e.ErrorName == "EOPNOTSUPP")
        {
            string refusal = $"the kernel refused `ip link add {device} type wireguard` ({e.Message})";
            if (path == WireGuardControlPath.Kernel)
            {
                throw new InvalidOperationException($"wireguard: ControlPath is Kernel but {refusal}; install the wireguard module or use ControlPath Auto/Userspace", e);
            }

            UseUserspace(refusal + ", so wireguard-go runs the device, as wg-quick does");
            return;
        }

        await UseKernelAsync($"the kernel accepted `ip link add {device} type wireguard`", cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask UseKernelAsync(string reason, CancellationToken cancellationToken)
    {
        _control = await _platform.OpenKernelAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException("wireguard: the kernel created a wireguard link but has no 'wireguard' generic netlink family to configure it");
        IsKernel = true;
        Reason = reason;
    }

    private void UseUserspace(string reason)
    {
        _control = _platform.Userspace;
        IsKernel = false;
        Reason = reason;
    }

    private async ValueTask<LinkInfo> EnsureKernelLinkAsync(string name, CancellationToken cancellationToken)
    {
        LinkInfo? link = await _netlink.GetLinkAsync(name, cancellationToken).ConfigureAwait(false);
        if (link is { Kind: "wireguard" })
        {
            return link;
        }

        if (link is not null)
        {
            LogReplacingForeignLink(_logger, name, link.Kind ?? "device");
            await _netlink.DeleteLinkAsync(link.Index, cancellationToken).ConfigureAwait(false);
        }

        return await _netlink.CreateLinkAsync(new LinkSpec { Name = name, Kind = LinkKind.WireGuard }, cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<LinkInfo> EnsureUserspaceLinkAsync(string name, CancellationToken cancellationToken)
    {
        LinkInfo? link = await _netlink.GetLinkAsync(name, cancellationToken).ConfigureAwait(false);
        if (link is not null && await Control.GetDeviceAsync(name, cancellationToken).ConfigureAwait(false) is not null)
        {
            return link;
        }

        if (link is not null)
        {
            // A link nobody serves (a kernel wireguard link, a leftover device): wireguard-go needs the name.
            LogReplacingForeignLink(_logger, name, link.Kind ?? "device");
            await _netlink.DeleteLinkAsync(link.Index, cancellationToken).ConfigureAwait(false);
        }

        await _platform.EnsureUserspaceDeviceAsync(name, cancellationToken).ConfigureAwait(false);
        return await _netlink.GetLinkAsync(name, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"wireguard: wireguard-go serves {name} but the network namespace has no link of that name (was it started in another namespace?)");
    }

    [LoggerMessage(EventId = 6300, Level = LogLevel.Information, Message = "wireguard: using {Path} for {Devices} via {Control}: {Reason}")]
    private static partial void LogPathChosen(ILogger logger, string path, string devices, string control, string reason);

    [LoggerMessage(EventId = 6301, Level = LogLevel.Warning, Message = "wireguard: {Device} exists as a {Kind} the chosen WireGuard path cannot use; recreating it")]
    private static partial void LogReplacingForeignLink(ILogger logger, string device, string kind);
}
