using System.Security.Cryptography;
using Flannel.IO;
using Flannel.Netlink.WireGuard;
using Microsoft.Extensions.Logging;

namespace Flannel.Backends.WireGuard.Keys;

/// <summary>
/// The node's private key file, as flannel keeps it: <c>/run/flannel/wgkey</c> unless <c>$WIREGUARD_KEY_FILE</c>
/// names another path; the base64 private key, no newline. Created on first start, then reused on every
/// restart, so the public key in the lease stays the same and peers need not be reconfigured.
/// </summary>
/// <remarks>
/// Differences from flannel, all in the direction of keeping the secret safe: the file is written by
/// <see cref="AtomicFile.TryCreate"/>, created with mode 0400 (never readable by anyone else, not even for an instant),
/// so a crash leaves either no key or a whole one; an existing key file that others can read is tightened
/// to 0400 with a warning; and a concurrent creator (two agents racing) loses the rename and reads the winner's key.
/// </remarks>
[System.Runtime.Versioning.SupportedOSPlatform("linux")] // Unix file modes
public static partial class WireGuardKeyFile
{
    /// <summary>flannel's default path.</summary>
    public const string DefaultPath = "/run/flannel/wgkey";

    /// <summary>The environment variable that overrides the path (flannel's <c>WIREGUARD_KEY_FILE</c>).</summary>
    public const string PathEnvironmentVariable = "WIREGUARD_KEY_FILE";

    /// <summary>The mode of a key file: read by its owner only.</summary>
    public const UnixFileMode FileMode = UnixFileMode.UserRead;

    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    /// <summary>
    /// The path to use: <paramref name="configured"/> when given, else <c>$WIREGUARD_KEY_FILE</c> when set (as
    /// flannel, even when empty), else <see cref="DefaultPath"/>.
    /// </summary>
    public static string ResolvePath(string? configured) =>
        configured ?? Environment.GetEnvironmentVariable(PathEnvironmentVariable) ?? DefaultPath;

    /// <summary>Reads the key pair from <paramref name="path"/>, creating the file with a new key when it does not exist.</summary>
    /// <exception cref="WireGuardKeyFileException">The file cannot be read, written or parsed.</exception>
    public static WireGuardKeyPair LoadOrCreate(string path, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(logger);
        if (path.Length == 0)
        {
            throw new WireGuardKeyFileException($"the WireGuard key file path is empty (is ${PathEnvironmentVariable} set to \"\"?)");
        }

        if (!File.Exists(path))
        {
            WireGuardKeyPair created = WireGuardKeyPair.Generate();
            if (TryCreate(path, created.PrivateKey))
            {
                LogKeyCreated(logger, path, created.PublicKey);
                return created;
            }

            // Another agent created it between the check and the rename: use its key.
        }

        return Load(path, logger);
    }

    private static WireGuardKeyPair Load(string path, ILogger logger)
    {
        string text;
        try
        {
            UnixFileMode mode = File.GetUnixFileMode(path);
            if ((mode & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
            {
                LogKeyFileTooOpen(logger, path, Convert.ToString((int)mode, 8));
                File.SetUnixFileMode(path, FileMode);
            }

            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new WireGuardKeyFileException($"could not read key file {path}: {e.Message}", e);
        }

        if (!WireGuardKey.TryParse(text, out WireGuardKey privateKey))
        {
            throw new WireGuardKeyFileException($"could not parse private key from file {path}: expected {WireGuardKey.Base64Length} characters of base64 (a key as `wg genkey` writes it), found {text.Trim().Length} characters");
        }

        WireGuardKeyPair pair = WireGuardKeyPair.FromPrivateKey(privateKey);
        LogKeyLoaded(logger, path, pair.PublicKey);
        return pair;
    }

    /// <summary>Writes the key as a new 0400 file (<see cref="AtomicFile.TryCreate"/>); false when the path appeared meanwhile.</summary>
    private static bool TryCreate(string path, WireGuardKey privateKey)
    {
        Span<byte> text = stackalloc byte[WireGuardKey.Base64Length];
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path)) ?? "/", DirectoryMode);
            System.Text.Encoding.ASCII.GetBytes(privateKey.ToString(), text);

            // Never a replacement: if a racing agent won, its key is the one its peers may already know, so keep it.
            return AtomicFile.TryCreate(path, text, FileMode);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new WireGuardKeyFileException($"could not write key file {path}: {e.Message}", e);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(text);
        }
    }

    [LoggerMessage(EventId = 4100, Level = LogLevel.Information, Message = "Created WireGuard key file {Path} (mode 0400); public key {PublicKey}")]
    private static partial void LogKeyCreated(ILogger logger, string path, WireGuardKey publicKey);

    [LoggerMessage(EventId = 4101, Level = LogLevel.Information, Message = "Using the WireGuard key from {Path}; public key {PublicKey}")]
    private static partial void LogKeyLoaded(ILogger logger, string path, WireGuardKey publicKey);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Warning, Message = "WireGuard key file {Path} has mode {Mode}: others can read the private key; setting it to 0400")]
    private static partial void LogKeyFileTooOpen(ILogger logger, string path, string mode);
}

/// <summary>The WireGuard key file could not be read, written or parsed.</summary>
public sealed class WireGuardKeyFileException : Exception
{
    /// <summary>Creates the exception.</summary>
    public WireGuardKeyFileException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public WireGuardKeyFileException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public WireGuardKeyFileException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
