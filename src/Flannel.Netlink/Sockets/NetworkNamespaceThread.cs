using System.Runtime.ExceptionServices;
using Flannel.Netlink.Interop;
using Microsoft.Win32.SafeHandles;
using static Tmds.Linux.LibC;

namespace Flannel.Netlink.Sockets;

/// <summary>
/// Runs a piece of work inside another network namespace without moving any thread the runtime owns: a
/// dedicated thread enters the namespace with <c>setns(CLONE_NEWNET)</c>, runs the work, returns to its original
/// namespace, and ends. Sockets created there stay bound to the target namespace for their whole life, and
/// files under /proc/sys/net opened there show the target namespace's values.
/// </summary>
internal static class NetworkNamespaceThread
{
    /// <summary>Directory where <c>ip netns add NAME</c> bind-mounts named namespaces.</summary>
    public const string NamedNamespaceDirectory = "/var/run/netns";

    /// <summary>A name (<c>fnt-1a2b</c>) becomes /var/run/netns/NAME; anything with a slash is a path.</summary>
    public static string ResolvePath(string nameOrPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(nameOrPath);
        if (nameOrPath.Contains('/', StringComparison.Ordinal))
        {
            return nameOrPath;
        }

        if (nameOrPath is "." or "..")
        {
            throw new ArgumentException($"'{nameOrPath}' is not a namespace name.", nameof(nameOrPath));
        }

        return Path.Combine(NamedNamespaceDirectory, nameOrPath);
    }

    /// <summary>Runs <paramref name="work"/> inside the namespace at <paramref name="namespacePath"/> and returns its result.</summary>
    public static T Run<T>(string namespacePath, Func<T> work)
    {
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = RunHere(namespacePath, work);
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        })
        {
            IsBackground = true,
            Name = "netns " + namespacePath,
        };
        thread.Start();
        thread.Join();
        failure?.Throw();
        return result;
    }

    /// <summary>Like <see cref="Run{T}"/>, without blocking the caller's thread.</summary>
    public static Task<T> RunAsync<T>(string namespacePath, Func<T> work)
    {
        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                completion.SetResult(RunHere(namespacePath, work));
            }
            catch (Exception e)
            {
                completion.SetException(e);
            }
        })
        {
            IsBackground = true,
            Name = "netns " + namespacePath,
        };
        thread.Start();
        return completion.Task;
    }

    private static T RunHere<T>(string namespacePath, Func<T> work)
    {
        using SafeFileHandle original = OpenNamespace("/proc/thread-self/ns/net");
        using SafeFileHandle target = OpenNamespace(namespacePath);
        Enter(target, namespacePath);
        try
        {
            return work();
        }
        finally
        {
            // If returning fails the thread is still harmless: it is ours and ends right after this.
            _ = setns((int)original.DangerousGetHandle(), SocketConstants.CLONE_NEWNET);
        }
    }

    /// <summary>Opens a namespace file (O_RDONLY|O_CLOEXEC), e.g. to pass as IFLA_NET_NS_FD.</summary>
    public static SafeFileHandle OpenNamespace(string path)
    {
        try
        {
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new NetlinkException($"Cannot open network namespace '{path}': {e.Message}", e);
        }
    }

    private static void Enter(SafeFileHandle target, string path)
    {
        if (setns((int)target.DangerousGetHandle(), SocketConstants.CLONE_NEWNET) != 0)
        {
            int error = errno;
            throw new NetlinkException($"setns('{path}', CLONE_NEWNET) failed: {Errno.Name(error)} ({error}), {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(error)}");
        }
    }
}
