namespace Flannel.Testing.Namespaces;

/// <summary>
/// A pinned mount namespace in which <c>/var/run/wireguard</c> is a node's private directory, so several "nodes" on
/// one machine can each run wireguard-go for a device named <c>flannel-wg</c>: wireguard-go always creates
/// <c>/var/run/wireguard/&lt;device&gt;.sock</c>, and in the root mount namespace those sockets would collide.
/// </summary>
/// <remarks>
/// Layout under <see cref="Directory"/> (bound onto itself and made private, because a mount namespace can only be
/// pinned on a private mount): <c>sockets/</c>, which the namespace sees as /var/run/wireguard and everyone else sees
/// at its real path, and <c>mnt</c>, the pinned namespace. The namespace is a slave of the root one, so network
/// namespaces created later (pods) are visible inside it, while its own bind mount stays inside. Run a program in it
/// with <see cref="Enter(string[])"/> (<c>nsenter --mount=mnt -- …</c>); its children (wireguard-go) stay in it.
/// </remarks>
public sealed class WireGuardMountNamespace : IAsyncDisposable
{
    private int _disposed;

    private WireGuardMountNamespace(string directory) => Directory = directory;

    /// <summary>The node's directory (a private bind mount).</summary>
    public string Directory { get; }

    /// <summary>What the namespace sees as /var/run/wireguard: the node's wireguard-go sockets.</summary>
    public string SocketDirectory => Path.Combine(Directory, "sockets");

    /// <summary>The pinned mount namespace (for <c>nsenter --mount=</c>).</summary>
    public string MountNamespacePath => Path.Combine(Directory, "mnt");

    /// <summary>Creates the directory, pins the namespace and binds <see cref="SocketDirectory"/> at /var/run/wireguard inside it.</summary>
    public static async Task<WireGuardMountNamespace> CreateAsync(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var created = new WireGuardMountNamespace(directory);
        try
        {
            System.IO.Directory.CreateDirectory(created.SocketDirectory);
            await RunCheckedAsync("mount", "--bind", directory, directory).ConfigureAwait(false);
            await RunCheckedAsync("mount", "--make-private", directory).ConfigureAwait(false);
            await File.WriteAllBytesAsync(created.MountNamespacePath, []).ConfigureAwait(false);

            // The mount point must exist in the tree the namespace copies; wg-quick creates the same directory.
            System.IO.Directory.CreateDirectory("/run/wireguard");
            await RunCheckedAsync(
                "unshare", "--mount=" + created.MountNamespacePath, "--propagation", "slave",
                "mount", "--bind", created.SocketDirectory, "/run/wireguard").ConfigureAwait(false);
            return created;
        }
        catch
        {
            await created.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary><paramref name="argv"/> prefixed to run inside the namespace: <c>nsenter --mount=PIN -- argv…</c>.</summary>
    public string[] Enter(params string[] argv) => ["nsenter", "--mount=" + MountNamespacePath, "--", .. argv];

    /// <summary>
    /// <paramref name="argv"/> run inside this mount namespace and the network namespace <paramref name="network"/>,
    /// e.g. <c>wg show</c> for the node.
    /// </summary>
    public string[] Enter(NetworkNamespace network, params string[] argv)
    {
        ArgumentNullException.ThrowIfNull(network);
        return ["nsenter", "--mount=" + MountNamespacePath, "--net=" + network.Path, "--", .. argv];
    }

    /// <summary>Unpins the namespace and removes the directory's bind mount (processes still inside keep theirs).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await NetworkNamespace.RunProcessAsync(["umount", MountNamespacePath], CancellationToken.None).ConfigureAwait(false);
        await NetworkNamespace.RunProcessAsync(["umount", "--lazy", Directory], CancellationToken.None).ConfigureAwait(false);
    }

    private static async Task RunCheckedAsync(params string[] argv)
    {
        ProcessResult result = await NetworkNamespace.RunProcessAsync(argv, CancellationToken.None).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{string.Join(' ', argv)} failed ({result.ExitCode}): {result.StandardError.Trim()}");
        }
    }
}
