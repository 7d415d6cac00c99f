using System.ComponentModel.DataAnnotations;
using Flannel.Backends.WireGuard.Userspace;

namespace Flannel.Backends.WireGuard;

/// <summary>Which WireGuard implementation carries the devices.</summary>
public enum WireGuardControlPath
{
    /// <summary>
    /// Kernel WireGuard when the kernel accepts <c>ip link add flannel-wg type wireguard</c>, else userspace
    /// wireguard-go (as <c>wg-quick</c> decides). The default.
    /// </summary>
    Auto,

    /// <summary>Kernel WireGuard only; registering the network fails when the kernel has no WireGuard.</summary>
    Kernel,

    /// <summary>wireguard-go only, even when the kernel has WireGuard.</summary>
    Userspace,
}

/// <summary>
/// Host-side options of the WireGuard backend (the cluster-wide ones, ListenPort, ListenPortV6, MTU, PSK,
/// PersistentKeepaliveInterval and Mode, come from the <c>Backend</c> object of net-conf.json).
/// </summary>
public sealed class WireGuardBackendOptions
{
    /// <summary>How often the devices and peers are compared with the desired state and repaired. Default 10 s.</summary>
    [PositiveDuration]
    public TimeSpan ResyncInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Kernel, userspace, or whichever the kernel supports (the default).</summary>
    public WireGuardControlPath ControlPath { get; set; } = WireGuardControlPath.Auto;

    /// <summary>
    /// The private key file; null means flannel's rule: <c>$WIREGUARD_KEY_FILE</c> when set, else
    /// <c>/run/flannel/wgkey</c>.
    /// </summary>
    public string? KeyFile { get; set; }

    /// <summary>
    /// The network namespace (a name under /var/run/netns or a path) the devices live in, for an agent bound to a
    /// namespace other than its process's (several nodes in one process). Null: the process's own. The generic
    /// netlink socket is opened there and wireguard-go is started there.
    /// </summary>
    public string? NetworkNamespace { get; set; }

    /// <summary>The wireguard-go executable for the userspace path (Debian: /usr/bin/wireguard-go).</summary>
    [Required]
    public string WireGuardGoExecutable { get; set; } = "wireguard-go";

    /// <summary>
    /// Where this node's wireguard-go sockets are, as this process sees the directory. Default
    /// <c>/var/run/wireguard</c>; a node that shares the machine with others gives each its own (see
    /// <see cref="MountNamespace"/> and docs/backends.md).
    /// </summary>
    [Required]
    public string SocketDirectory { get; set; } = WireGuardUapiClient.DefaultSocketDirectory;

    /// <summary>
    /// A pinned mount namespace (a path bound with <c>unshare --mount=PATH</c>) in which /var/run/wireguard is this
    /// node's private directory, for several nodes in one process; wireguard-go is started in it. Null: the
    /// process's own mount namespace (one agent per process; run the process in a private mount namespace when
    /// several share a machine).
    /// </summary>
    public string? MountNamespace { get; set; }

    /// <summary>How long wireguard-go may take to create its device and open its socket. Default 15 s.</summary>
    [PositiveDuration]
    public TimeSpan WireGuardGoStartTimeout { get; set; } = TimeSpan.FromSeconds(15);
}
