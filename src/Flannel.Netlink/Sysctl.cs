using Flannel.Netlink.Sockets;

namespace Flannel.Netlink;

/// <summary>
/// Kernel parameters under <c>/proc/sys</c>, bound to one network namespace (the <c>net/*</c> keys are per
/// namespace). A seam of its own, so backends that set a sysctl are tested without root.
/// </summary>
public interface ISysctl
{
    /// <summary>Writes <paramref name="value"/> to the key, e.g. <c>net/ipv6/conf/flannel-v6.1/accept_ra</c> = <c>0</c>.</summary>
    ValueTask WriteAsync(string key, string value, CancellationToken cancellationToken);
}

/// <summary>
/// <see cref="ISysctl"/> over <c>/proc/sys</c> of the calling process's namespace (<see cref="Current"/>) or of a named
/// one (<see cref="InNamespace"/>). It lives in Flannel.Netlink because it enters namespaces the same way
/// <see cref="RtNetlink.OpenInNamespace"/> does: on a dedicated thread, never moving a runtime thread.
/// </summary>
public sealed class ProcSysctl : ISysctl
{
    private readonly string? _namespacePath;

    private ProcSysctl(string? namespacePath) => _namespacePath = namespacePath;

    /// <summary>The calling process's network namespace.</summary>
    public static ProcSysctl Current { get; } = new(null);

    /// <summary>The namespace file this instance writes in, or null for the caller's own namespace.</summary>
    public string? NamespacePath => _namespacePath;

    /// <summary>Another network namespace: a name created by <c>ip netns add</c> or a namespace file path.</summary>
    /// <param name="nameOrPath">A namespace name (no slash) or a namespace file path.</param>
    public static ProcSysctl InNamespace(string nameOrPath) => new(NetworkNamespaceThread.ResolvePath(nameOrPath));

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The key is not a relative path under /proc/sys.</exception>
    public async ValueTask WriteAsync(string key, string value, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(value);
        string path = PathOf(key);
        if (_namespacePath is null)
        {
            await File.WriteAllTextAsync(path, value, cancellationToken).ConfigureAwait(false);
            return;
        }

        // /proc/sys/net shows the namespace of the thread that opens the file, so open it from inside.
        await NetworkNamespaceThread.RunAsync(_namespacePath, () =>
        {
            File.WriteAllText(path, value);
            return true;
        }).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The file of <paramref name="key"/>; rejects absolute keys and <c>.</c> / <c>..</c> segments.</summary>
    internal static string PathOf(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        string[] parts = key.Split('/');
        if (key.StartsWith('/') || parts.Any(p => p.Length == 0 || p is "." or ".."))
        {
            throw new ArgumentException($"Sysctl key '{key}' must be a relative path under /proc/sys such as net/ipv6/conf/flannel-v6.1/accept_ra.", nameof(key));
        }

        return "/proc/sys/" + key;
    }
}
