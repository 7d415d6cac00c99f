using Flannel.Netlink.Generic;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Protocol;
using Flannel.Netlink.Sockets;

namespace Flannel.Netlink.WireGuard;

/// <summary>
/// Kernel WireGuard over generic netlink: resolves the <c>wireguard</c> family once, then reads devices with
/// <c>WG_CMD_GET_DEVICE</c> (a dump, coalesced into one <see cref="WireGuardDevice"/>) and changes them with
/// <c>WG_CMD_SET_DEVICE</c> (split over several messages when the peers do not fit in one). Bound to one network
/// namespace for its whole life, like <see cref="RtNetlink"/>.
/// </summary>
public sealed class WireGuardNetlink : IWireGuardControl
{
    private readonly GenericNetlinkChannel _channel;
    private readonly ushort _familyId;

    private WireGuardNetlink(GenericNetlinkChannel channel, ushort familyId, string? namespacePath)
    {
        _channel = channel;
        _familyId = familyId;
        Description = $"kernel (generic netlink family {WireGuardConstants.WG_GENL_NAME}, id {familyId}{(namespacePath is null ? string.Empty : ", namespace " + namespacePath)})";
    }

    /// <inheritdoc />
    public string Description { get; }

    /// <summary>
    /// Opens a NETLINK_GENERIC socket in the current network namespace, or in <paramref name="namespaceNameOrPath"/>
    /// (a name under /var/run/netns or a path), and resolves the <c>wireguard</c> family. Returns null when the
    /// kernel has no such family (the module is not loaded and cannot be; e.g. this machine).
    /// </summary>
    /// <exception cref="NetlinkException">The socket cannot be opened or the controller failed.</exception>
    public static async ValueTask<WireGuardNetlink?> TryOpenAsync(string? namespaceNameOrPath, CancellationToken cancellationToken)
    {
        string? path = namespaceNameOrPath is null ? null : NetworkNamespaceThread.ResolvePath(namespaceNameOrPath);
        LinuxNetlinkSocket socket = LinuxNetlinkSocket.Open(path, protocol: GenericNetlinkConstants.NETLINK_GENERIC);
        try
        {
            return await TryOpenAsync(socket, path, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Resolves the family over <paramref name="socket"/>; disposes it and returns null when there is none.</summary>
    internal static async ValueTask<WireGuardNetlink?> TryOpenAsync(INetlinkSocket socket, string? namespacePath, CancellationToken cancellationToken)
    {
        var channel = new GenericNetlinkChannel(socket);
        GenericNetlinkFamily? family = await channel.ResolveFamilyAsync(WireGuardConstants.WG_GENL_NAME, cancellationToken).ConfigureAwait(false);
        if (family is null)
        {
            channel.Dispose();
            return null;
        }

        return new WireGuardNetlink(channel, family.Id, namespacePath);
    }

    /// <inheritdoc />
    /// <remarks>Null when there is no such link (ENODEV); a link that is not a WireGuard device fails with EOPNOTSUPP.</remarks>
    public async ValueTask<WireGuardDevice?> GetDeviceAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var builder = new WireGuardDeviceBuilder();
        try
        {
            await _channel.RequestAsync(
                "WG_CMD_GET_DEVICE",
                (Family: _familyId, Name: name),
                static (ref NetlinkWriter writer, (ushort Family, string Name) state, uint sequence) =>
                {
                    WireGuardMessages.WriteGetDevice(ref writer, state.Family, state.Name, sequence);
                    return 1;
                },
                static state => "device " + state.Name,
                (type, payload) =>
                {
                    if (type == _familyId)
                    {
                        builder.Add(payload);
                    }
                },
                dump: true,
                cancellationToken).ConfigureAwait(false);
        }
        catch (NetlinkException e) when (e.Errno == Errno.ENODEV)
        {
            return null;
        }

        return builder.HasData ? builder.Build() : null;
    }

    /// <inheritdoc />
    public ValueTask SetDeviceAsync(WireGuardDeviceUpdate update, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(update);
        return _channel.RequestAsync(
            "WG_CMD_SET_DEVICE",
            (Family: _familyId, Update: update),
            static (ref NetlinkWriter writer, (ushort Family, WireGuardDeviceUpdate Update) state, uint sequence) =>
                WireGuardMessages.WriteSetDevice(ref writer, state.Family, state.Update, sequence),
            static state => $"device {state.Update.Name} ({state.Update.Peers.Count} peer change(s))",
            onReply: null,
            dump: false,
            cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _channel.Dispose();
        return ValueTask.CompletedTask;
    }
}
