using System.Globalization;
using System.Runtime.InteropServices;

namespace Flannel.IO;

/// <summary>
/// Writes small files that other programs read while they change (subnet.env, the CNI plugin and its conflist, the
/// WireGuard key): a reader sees the old file or the new one, never a part of either, and after a crash the file is
/// one of them.
/// </summary>
/// <remarks>
/// <para>
/// The content goes to a temporary dot-file beside the target (the same file system, so the rename is atomic, and
/// skipped by readers that glob, such as the container runtime's scan of <c>*.conf*</c>). The file is created with
/// the final mode, so it is never more open than that, not even for an instant; the mode is then set again on the
/// open handle, because the create mode is filtered by the umask. The file is flushed to disk (fsync), renamed into
/// place, and on Linux its directory is flushed too, since only that makes the rename itself durable. On failure the
/// temporary file is removed and the target is unchanged.
/// </para>
/// <para>Missing parent directories are the caller's to create: their mode, or whether a missing one is an error
/// (a host directory that is not mounted), depends on the file.</para>
/// </remarks>
public static partial class AtomicFile
{
    /// <summary>Replaces <paramref name="path"/> (or creates it) with <paramref name="content"/> and exactly <paramref name="mode"/>.</summary>
    /// <exception cref="IOException">The file could not be written; the previous file, if any, is unchanged.</exception>
    /// <exception cref="UnauthorizedAccessException">The directory is not writable.</exception>
    public static void Write(string path, ReadOnlySpan<byte> content, UnixFileMode mode) => Commit(path, content, mode, replace: true);

    /// <summary>
    /// Creates <paramref name="path"/> with <paramref name="content"/> and exactly <paramref name="mode"/>, unless
    /// it exists: then it is left as it is (a concurrent writer won) and the result is false. Never replaces a file.
    /// </summary>
    /// <exception cref="IOException">The file could not be written.</exception>
    /// <exception cref="UnauthorizedAccessException">The directory is not writable.</exception>
    public static bool TryCreate(string path, ReadOnlySpan<byte> content, UnixFileMode mode) => Commit(path, content, mode, replace: false);

    private static bool Commit(string path, ReadOnlySpan<byte> content, UnixFileMode mode, bool replace)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath)
            ?? throw new ArgumentException($"'{path}' has no parent directory.", nameof(path));

        // The suffix only has to avoid other writers' (CreateNew refuses a clash), so it is not drawn from
        // RandomNumberGenerator, which would load OpenSSL into a process that needs no TLS.
        string temporary = Path.Combine(
            directory,
            string.Create(CultureInfo.InvariantCulture, $".{Path.GetFileName(fullPath)}.{Random.Shared.NextInt64(1L << 48):x12}.tmp"));
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 0 };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = mode;
        }

        try
        {
            using (var stream = new FileStream(temporary, options))
            {
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(stream.SafeFileHandle, mode);
                }

                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }

            if (replace)
            {
                File.Move(temporary, fullPath, overwrite: true); // rename(2): atomic, and never ETXTBSY for a running binary
            }
            else
            {
                try
                {
                    File.Move(temporary, fullPath, overwrite: false);
                }
                catch (IOException) when (File.Exists(fullPath))
                {
                    TryDelete(temporary);
                    return false;
                }
            }
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }

        FlushDirectory(directory);
        return true;
    }

    private static void FlushDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        // .NET cannot open a directory as a file.
        int fd = open(directory, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
        if (fd < 0)
        {
            throw new IOException($"open {directory}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }

        int result = fsync(fd);
        int errno = Marshal.GetLastPInvokeError();
        _ = close(fd);
        if (result < 0)
        {
            throw new IOException($"fsync {directory}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: the original error matters more.
        }
    }

    private const int O_RDONLY = 0;
    private const int O_DIRECTORY = 0x10000;
    private const int O_CLOEXEC = 0x80000;

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
