using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Flannel.IO;
using Flannel.Networking;

namespace Flannel.SubnetEnv;

/// <summary>
/// Reads and atomically replaces flannel's subnet.env.
/// </summary>
/// <remarks>
/// <para>
/// Writing follows flannel (<c>renameio.WriteFile</c>) through <see cref="AtomicFile"/>: a temporary file in the
/// same directory, flushed to disk, mode 0644 whatever the umask, renamed over the target, so a reader (the CNI
/// plugin, run concurrently by the kubelet) sees either the old file or the new one, never a partial one. Missing
/// parent directories are created with mode 0755.
/// </para>
/// <para>
/// Reading is for the restart path: flannel reads the previous <c>FLANNEL_SUBNET</c> (to ask for the same
/// subnet again) and the previous networks (to clean up old masquerade rules) before overwriting the file.
/// </para>
/// </remarks>
public static class SubnetEnvFile
{
    /// <summary>flannel's default path (<c>--subnet-file</c>).</summary>
    public const string DefaultPath = "/run/flannel/subnet.env";

    /// <summary>The mode of the written file: rw-r--r--.</summary>
    public const UnixFileMode FileMode =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>The mode of created parent directories: rwxr-xr-x.</summary>
    public const UnixFileMode DirectoryMode =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    /// <summary>Atomically replaces <paramref name="path"/> with <paramref name="environment"/>'s text (<see cref="AtomicFile"/>).</summary>
    /// <exception cref="IOException">The file could not be written; the previous file (if any) is unchanged.</exception>
    public static void Write(string path, SubnetEnvironment environment)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(environment);
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))
            ?? throw new ArgumentException($"'{path}' has no parent directory.", nameof(path));
        CreateDirectories(directory);
        AtomicFile.Write(path, Encoding.UTF8.GetBytes(environment.Format()), FileMode);
    }

    /// <summary>
    /// Reads a subnet.env written by flannel or Flannel.NET. A missing file gives
    /// <see cref="SubnetEnvReadResult.Exists"/> = false; a value that cannot be used is left null and the
    /// reason is listed in <see cref="SubnetEnvReadResult.Problems"/>. Never throws for bad content.
    /// </summary>
    /// <exception cref="IOException">The file exists but could not be read.</exception>
    public static SubnetEnvReadResult Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string text;
        try
        {
            text = File.ReadAllText(path, Encoding.UTF8);
        }
        catch (FileNotFoundException)
        {
            return SubnetEnvReadResult.Missing(path);
        }
        catch (DirectoryNotFoundException)
        {
            return SubnetEnvReadResult.Missing(path);
        }

        return Parse(text, path);
    }

    /// <summary>Parses subnet.env text; see <see cref="Read"/>. <paramref name="source"/> names the file in messages.</summary>
    public static SubnetEnvReadResult Parse(string text, string source = "subnet.env")
    {
        ArgumentNullException.ThrowIfNull(text);
        Dictionary<string, string> values = SubnetEnvText.ReadVariables(text);
        var problems = new List<string>();

        IPNetwork? ReadCidr(string key, AddressFamily family)
        {
            if (!values.TryGetValue(key, out string? value))
            {
                return null;
            }

            // flannel's values are comma-separated lists (ReadCIDRsFromSubnetFile): an entry that does not parse is
            // logged and dropped, the rest is kept. One node has one subnet per family, so more than one good entry
            // cannot be used (flannel: "more than 1 entry found", treated as absent).
            if (string.IsNullOrWhiteSpace(value))
            {
                problems.Add($"{source}: {key} is empty");
                return null;
            }

            string expected = family == AddressFamily.InterNetwork ? "IPv4" : "IPv6";
            string[] entries = SubnetEnvText.SplitEntries(value);
            IPNetwork? network = null;
            int good = 0;
            foreach (string entry in entries)
            {
                if (IPText.TryParseNetwork(entry, family, out IPNetwork parsed))
                {
                    network = parsed;
                    good++;
                }
                else
                {
                    problems.Add(entries.Length == 1
                        ? $"{source}: {key}={value} is not an {expected} CIDR; ignoring it"
                        : $"{source}: {key}={value}: entry '{entry}' is not an {expected} CIDR; ignoring that entry");
                }
            }

            if (good > 1)
            {
                problems.Add($"{source}: {key}={value} has {good} entries, expected exactly one; ignoring it");
                return null;
            }

            // FLANNEL_SUBNET holds the gateway address (network + 1); parsing drops the host bits, as Go's
            // ParseCIDR does, which gives back the lease subnet.
            return network;
        }

        IPNetwork? network4 = ReadCidr(SubnetEnvText.Network, AddressFamily.InterNetwork);
        IPNetwork? subnet4 = ReadCidr(SubnetEnvText.Subnet, AddressFamily.InterNetwork);
        IPNetwork? network6 = ReadCidr(SubnetEnvText.IPv6Network, AddressFamily.InterNetworkV6);
        IPNetwork? subnet6 = ReadCidr(SubnetEnvText.IPv6Subnet, AddressFamily.InterNetworkV6);

        int? mtu = null;
        if (values.TryGetValue(SubnetEnvText.Mtu, out string? mtuText))
        {
            if (int.TryParse(mtuText, NumberStyles.None, CultureInfo.InvariantCulture, out int parsed) && parsed > 0)
            {
                mtu = parsed;
            }
            else
            {
                problems.Add($"{source}: FLANNEL_MTU={mtuText} is not a positive integer; ignoring it");
            }
        }

        bool? ipMasq = null;
        if (values.TryGetValue(SubnetEnvText.IPMasq, out string? masqText))
        {
            if (bool.TryParse(masqText, out bool parsed))
            {
                ipMasq = parsed;
            }
            else
            {
                problems.Add($"{source}: FLANNEL_IPMASQ={masqText} is not true or false; ignoring it");
            }
        }

        return new SubnetEnvReadResult
        {
            Exists = true,
            Network = network4,
            Subnet = subnet4,
            IPv6Network = network6,
            IPv6Subnet = subnet6,
            Mtu = mtu,
            IPMasq = ipMasq,
            Problems = problems,
        };
    }

    private static void CreateDirectories(string directory)
    {
        if (Directory.Exists(directory))
        {
            return;
        }

        string? parent = Path.GetDirectoryName(directory);
        if (parent is not null)
        {
            CreateDirectories(parent);
        }

        try
        {
            Directory.CreateDirectory(directory);
            if (!OperatingSystem.IsWindows())
            {
                // mkdir's mode is filtered by the umask; flannel's directory is 0755.
                File.SetUnixFileMode(directory, DirectoryMode);
            }
        }
        catch (IOException) when (Directory.Exists(directory))
        {
            // Created concurrently by someone else: fine.
        }
    }
}

/// <summary>What <see cref="SubnetEnvFile.Read"/> found.</summary>
public sealed record SubnetEnvReadResult
{
    /// <summary>False when the file does not exist (first start).</summary>
    public bool Exists { get; init; }

    /// <summary><c>FLANNEL_NETWORK</c>, when present and valid.</summary>
    public IPNetwork? Network { get; init; }

    /// <summary>The previous IPv4 lease subnet (the network of <c>FLANNEL_SUBNET</c>), when present and valid.</summary>
    public IPNetwork? Subnet { get; init; }

    /// <summary><c>FLANNEL_IPV6_NETWORK</c>, when present and valid.</summary>
    public IPNetwork? IPv6Network { get; init; }

    /// <summary>The previous IPv6 lease subnet (the network of <c>FLANNEL_IPV6_SUBNET</c>).</summary>
    public IPNetwork? IPv6Subnet { get; init; }

    /// <summary><c>FLANNEL_MTU</c>, when present and valid.</summary>
    public int? Mtu { get; init; }

    /// <summary><c>FLANNEL_IPMASQ</c>, when present and valid.</summary>
    public bool? IPMasq { get; init; }

    /// <summary>Why values were ignored (each names the variable and its value); empty when all was well.</summary>
    public IReadOnlyList<string> Problems { get; init; } = [];

    /// <summary>The result for a missing file.</summary>
    public static SubnetEnvReadResult Missing(string path) =>
        new() { Exists = false, Problems = [$"{path} does not exist: no previous subnet"] };
}
