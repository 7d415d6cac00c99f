namespace Flannel.Cni;

/// <summary>
/// The delegate netconf saved at ADD for the matching DEL: <c>&lt;dataDir&gt;/&lt;containerID&gt;</c>, directory 0700,
/// file 0600. <see cref="Save"/> writes it atomically (temporary file in the same directory, rename), so the plugin
/// being killed never leaves a truncated netconf that would make DEL skip the delegate, and the file is in place
/// before the delegate starts. <see cref="MakeDurable"/> (fsync of the file and the directory) survives power loss;
/// the plugin runs it while the delegate works, because on a busy node each fsync can take several milliseconds.
/// </summary>
internal static class ScratchStore
{
    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public static void Save(string dataDir, string containerId, byte[] netconf)
    {
        Directory.CreateDirectory(dataDir, DirectoryMode);
        string path = Path.Combine(dataDir, containerId);
        string temporary = Path.Combine(dataDir, $".{containerId}.{Environment.ProcessId}.tmp");
        try
        {
            var options = new FileStreamOptions
            {
                Mode = System.IO.FileMode.Create,
                Access = FileAccess.Write,
                Share = FileShare.None,
                UnixCreateMode = FileMode,
            };
            using (var stream = new FileStream(temporary, options))
            {
                stream.Write(netconf);
            }

            // Create honours the umask and keeps an existing file's mode; make it exactly 0600.
            File.SetUnixFileMode(temporary, FileMode);
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    /// <summary>Flushes the saved netconf and its directory entry to disk; throws <see cref="IOException"/> when the file cannot be.</summary>
    public static void MakeDurable(string dataDir, string containerId)
    {
        Fsync(Path.Combine(dataDir, containerId), required: true);
        Fsync(dataDir, required: false); // makes the rename durable; best effort, as the content itself is
    }

    /// <summary>The stored netconf, or null when there is none (DEL is then a no-op).</summary>
    public static byte[]? TryLoad(string dataDir, string containerId)
    {
        try
        {
            return File.ReadAllBytes(Path.Combine(dataDir, containerId));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    public static void Delete(string dataDir, string containerId)
    {
        try
        {
            File.Delete(Path.Combine(dataDir, containerId));
        }
        catch (IOException)
        {
            // Per the CNI spec DEL continues; a leftover file only costs a no-op delegate DEL later.
        }
    }

    private static void Fsync(string path, bool required)
    {
        // .NET cannot fsync a directory, nor a file it has not opened for writing, so go to libc (Linux only).
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        int fd = NativeMethods.open(path, NativeMethods.O_RDONLY | NativeMethods.O_CLOEXEC);
        int result = fd < 0 ? -1 : NativeMethods.fsync(fd);
        int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        if (fd >= 0)
        {
            _ = NativeMethods.close(fd);
        }

        if (result < 0 && required)
        {
            throw new IOException($"fsync {path}: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)}");
        }
    }
}

/// <summary>The three libc calls needed to fsync a directory.</summary>
internal static partial class NativeMethods
{
    public const int O_RDONLY = 0;
    public const int O_CLOEXEC = 0x80000;

    [System.Runtime.InteropServices.LibraryImport("libc", StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int open(string path, int flags);

    [System.Runtime.InteropServices.LibraryImport("libc", SetLastError = true)]
    internal static partial int fsync(int fd);

    [System.Runtime.InteropServices.LibraryImport("libc")]
    internal static partial int close(int fd);
}
