using Flannel.Backends.WireGuard.Userspace;
using Flannel.Netlink.WireGuard;
using Microsoft.Extensions.Logging;

namespace Flannel.Backends.WireGuard.Devices;

/// <summary>
/// What the backend needs from the machine to run WireGuard: the kernel's generic netlink control, and wireguard-go
/// with its configuration sockets. A seam so unit tests run both control paths against fakes.
/// </summary>
internal interface IWireGuardPlatform : IAsyncDisposable
{
    /// <summary>The userspace control (wireguard-go's sockets).</summary>
    IWireGuardControl Userspace { get; }

    /// <summary>Opens the kernel control; null when the kernel has no <c>wireguard</c> generic netlink family.</summary>
    ValueTask<IWireGuardControl?> OpenKernelAsync(CancellationToken cancellationToken);

    /// <summary>Makes sure a wireguard-go serves <paramref name="device"/>; true when one was started, false when one already ran.</summary>
    ValueTask<bool> EnsureUserspaceDeviceAsync(string device, CancellationToken cancellationToken);
}

/// <summary>The real machine: <see cref="WireGuardNetlink"/>, <see cref="WireGuardUapiClient"/> and <see cref="WireGuardGoLauncher"/>.</summary>
internal sealed class SystemWireGuardPlatform : IWireGuardPlatform
{
    private readonly WireGuardBackendOptions _options;
    private readonly WireGuardUapiClient _client;
    private readonly WireGuardGoLauncher _launcher;

    public SystemWireGuardPlatform(WireGuardBackendOptions options, ILogger logger)
    {
        _options = options;
        _client = new WireGuardUapiClient(options.SocketDirectory);
        _launcher = new WireGuardGoLauncher(
            new WireGuardGoLaunchOptions
            {
                Executable = options.WireGuardGoExecutable,
                NetworkNamespace = options.NetworkNamespace,
                MountNamespace = options.MountNamespace,
                StartTimeout = options.WireGuardGoStartTimeout,
            },
            _client,
            logger);
    }

    public IWireGuardControl Userspace => _client;

    public async ValueTask<IWireGuardControl?> OpenKernelAsync(CancellationToken cancellationToken) =>
        await WireGuardNetlink.TryOpenAsync(_options.NetworkNamespace, cancellationToken).ConfigureAwait(false);

    public async ValueTask<bool> EnsureUserspaceDeviceAsync(string device, CancellationToken cancellationToken) =>
        await _launcher.EnsureRunningAsync(device, cancellationToken).ConfigureAwait(false);

    public ValueTask DisposeAsync() => _client.DisposeAsync();
}
