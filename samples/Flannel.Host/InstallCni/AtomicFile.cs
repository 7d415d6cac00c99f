using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Flannel.Host.InstallCni;

/// <summary>Replaces a file atomically with an exact mode: temporary file beside it, fsync, rename, fsync of the directory.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static partial class AtomicFile
{
    /// <exception cref="IOException">The file could not be written; the previous file (if any) is unchanged.</exception>
    public static void Write(string path, ReadOnlySpan<byte> content, UnixFileMode mode)
    {
        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath)!;
        // A dot-file in the same directory: same file system (so rename is atomic), skipped by the runtime's *.conf* scan.
        string temporary = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Environment.ProcessId}.tmp");
        try
        {
            using (SafeFileHandle handle = File.OpenHandle(temporary, FileMode.Create, FileAccess.Write, FileShare.None, FileOptions.None, preallocationSize: 0))
            {
                // The create mode is filtered by the umask; set the final mode on the open handle.
                File.SetUnixFileMode(handle, mode);
                RandomAccess.SetLength(handle, 0);
                RandomAccess.Write(handle, content, fileOffset: 0);
                RandomAccess.FlushToDisk(handle);
            }

            File.Move(temporary, fullPath, overwrite: true); // rename(2): never ETXTBSY, even for a running plugin
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }

        FsyncDirectory(directory);
    }

    private static void FsyncDirectory(string directory)
    {
        // .NET cannot open a directory as a file; the rename is only durable once its directory is flushed.
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
