using System.Text.Json;
using Flannel.IO;

namespace Flannel.Host.InstallCni;

/// <summary>Where <c>flanneld install-cni</c> copies from and to; the defaults are kube-flannel's layout.</summary>
internal sealed record InstallCniOptions
{
    /// <summary>The CNI plugin in the image.</summary>
    public string CniPlugin { get; init; } = "/flannel";

    /// <summary>The host's CNI plugin directory (a hostPath mount).</summary>
    public string CniBinDir { get; init; } = "/opt/cni/bin";

    /// <summary>The conflist from the <c>kube-flannel-cfg</c> ConfigMap.</summary>
    public string CniConf { get; init; } = "/etc/kube-flannel/cni-conf.json";

    /// <summary>The host's CNI configuration directory (a hostPath mount).</summary>
    public string CniConfDir { get; init; } = "/etc/cni/net.d";

    /// <summary>The conflist's name there; the runtime uses the first file in lexical order.</summary>
    public string CniConfName { get; init; } = "10-flannel.conflist";

    /// <summary>The plugin's name in <see cref="CniBinDir"/>: the <c>type</c> the conflist refers to.</summary>
    public string CniPluginName { get; init; } = "flannel";
}

/// <summary>
/// <c>flanneld install-cni</c>: what kube-flannel's two init containers do with <c>cp</c>, without a shell in the
/// image. It installs the CNI plugin (mode 0755) and the conflist (mode 0644, after checking it is a CNI network
/// configuration, so a broken ConfigMap never replaces a working conflist), each atomically: a temporary file
/// beside the target, fsync, rename, fsync of the directory. A runtime never sees a half-written file, and a
/// plugin that is executing is replaced without <c>ETXTBSY</c>.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class InstallCniCommand
{
    public const string Name = "install-cni";

    private const UnixFileMode Executable = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    private const UnixFileMode Readable = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private static readonly (string Flag, string Usage, Func<InstallCniOptions, string> Get, Func<InstallCniOptions, string, InstallCniOptions> Set)[] Flags =
    [
        ("cni-plugin", "the CNI plugin to install", o => o.CniPlugin, (o, v) => o with { CniPlugin = v }),
        ("cni-bin-dir", "the directory the plugin is installed into", o => o.CniBinDir, (o, v) => o with { CniBinDir = v }),
        ("cni-plugin-name", "the plugin's file name there", o => o.CniPluginName, (o, v) => o with { CniPluginName = v }),
        ("cni-conf", "the CNI network configuration (conflist) to install", o => o.CniConf, (o, v) => o with { CniConf = v }),
        ("cni-conf-dir", "the directory the conflist is installed into", o => o.CniConfDir, (o, v) => o with { CniConfDir = v }),
        ("cni-conf-name", "the conflist's file name there", o => o.CniConfName, (o, v) => o with { CniConfName = v }),
    ];

    /// <summary>Runs the subcommand; <paramref name="args"/> follow <c>install-cni</c>. Returns the exit code.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter error)
    {
        InstallCniOptions? options;
        try
        {
            options = Parse(args);
        }
        catch (ArgumentException e)
        {
            error.WriteLine(e.Message);
            error.Write(Usage);
            return 2;
        }

        if (options is null)
        {
            error.Write(Usage);
            return 0;
        }

        try
        {
            byte[] plugin = File.ReadAllBytes(options.CniPlugin);
            byte[] conflist = File.ReadAllBytes(options.CniConf);
            ValidateConflist(conflist, options.CniConf);
            Report(error, options.CniPlugin, Install(plugin, options.CniBinDir, options.CniPluginName, Executable));
            Report(error, options.CniConf, Install(conflist, options.CniConfDir, options.CniConfName, Readable));
            return 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            error.WriteLine($"install-cni: {e.Message}");
            return 1;
        }
    }

    /// <summary>Parses Go-style flags (<c>-name=value</c>, <c>--name value</c>); null when help was asked for.</summary>
    /// <exception cref="ArgumentException">An unknown flag, a flag without a value, an empty value or a stray argument.</exception>
    internal static InstallCniOptions? Parse(IReadOnlyList<string> args)
    {
        var options = new InstallCniOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            string name = arg.StartsWith("--", StringComparison.Ordinal) ? arg[2..] : arg.StartsWith('-') ? arg[1..] : "";
            if (name.Length == 0)
            {
                throw new ArgumentException($"install-cni takes no arguments, only flags: {arg}");
            }

            if (name is "h" or "help")
            {
                return null;
            }

            string? value = null;
            int equals = name.IndexOf('=', StringComparison.Ordinal);
            if (equals >= 0)
            {
                value = name[(equals + 1)..];
                name = name[..equals];
            }

            int flag = Array.FindIndex(Flags, f => f.Flag == name);
            if (flag < 0)
            {
                throw new ArgumentException($"flag provided but not defined: -{name}");
            }

            value ??= i + 1 < args.Count ? args[++i] : throw new ArgumentException($"flag needs an argument: -{name}");
            if (value.Length == 0)
            {
                throw new ArgumentException($"invalid value \"\" for flag -{name}: empty");
            }

            if (Flags[flag].Flag is "cni-plugin-name" or "cni-conf-name" && (value.Contains('/', StringComparison.Ordinal) || value is "." or ".."))
            {
                throw new ArgumentException($"invalid value \"{value}\" for flag -{name}: a file name, not a path");
            }

            options = Flags[flag].Set(options, value);
        }

        return options;
    }

    internal static string Usage
    {
        get
        {
            var defaults = new InstallCniOptions();
            var text = new System.Text.StringBuilder("Usage: flanneld install-cni [OPTION]...\n")
                .Append("Installs the flannel CNI plugin and the CNI network configuration atomically (kube-flannel's init step).\n");
            foreach (var flag in Flags)
            {
                text.Append("  -").Append(flag.Flag).Append(" string\n    \t").Append(flag.Usage)
                    .Append(" (default \"").Append(flag.Get(defaults)).Append("\")\n");
            }

            return text.ToString();
        }
    }

    /// <summary>
    /// A CNI network configuration: a JSON object with a <c>name</c> and either a <c>plugins</c> list whose entries
    /// each name a <c>type</c> (a conflist) or a <c>type</c> of its own (a single conf).
    /// </summary>
    /// <exception cref="InvalidDataException">It is not; the message names the file and what is wrong.</exception>
    internal static void ValidateConflist(byte[] content, string source)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(content);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source} is not valid JSON: {e.Message}");
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"{source}: a CNI network configuration must be a JSON object, not {root.ValueKind}");
            }

            if (!root.TryGetProperty("name", out JsonElement name) || name.ValueKind != JsonValueKind.String || name.GetString()!.Length == 0)
            {
                throw new InvalidDataException($"{source}: \"name\" is missing or not a non-empty string");
            }

            if (root.TryGetProperty("plugins", out JsonElement plugins))
            {
                if (plugins.ValueKind != JsonValueKind.Array || plugins.GetArrayLength() == 0)
                {
                    throw new InvalidDataException($"{source}: \"plugins\" must be a non-empty list");
                }

                int index = 0;
                foreach (JsonElement plugin in plugins.EnumerateArray())
                {
                    if (plugin.ValueKind != JsonValueKind.Object || !plugin.TryGetProperty("type", out JsonElement type)
                        || type.ValueKind != JsonValueKind.String || type.GetString()!.Length == 0)
                    {
                        throw new InvalidDataException($"{source}: plugins[{index}] has no \"type\"");
                    }

                    index++;
                }
            }
            else if (!root.TryGetProperty("type", out JsonElement type) || type.ValueKind != JsonValueKind.String || type.GetString()!.Length == 0)
            {
                throw new InvalidDataException($"{source}: neither \"plugins\" (a conflist) nor \"type\" (a single network configuration)");
            }
        }
    }

    /// <summary>Installs <paramref name="content"/> as <paramref name="directory"/>/<paramref name="name"/>; false when it was already there, byte for byte, with that mode.</summary>
    internal static (string Path, bool Changed, UnixFileMode Mode, int Length) Install(byte[] content, string directory, string name, UnixFileMode mode)
    {
        string path = Path.Combine(directory, name);
        if (File.Exists(path) && File.GetUnixFileMode(path) == mode && new FileInfo(path).Length == content.Length
            && File.ReadAllBytes(path).AsSpan().SequenceEqual(content))
        {
            return (path, false, mode, content.Length);
        }

        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"{directory} does not exist (is the host directory mounted?)");
        }

        AtomicFile.Write(path, content, mode);
        return (path, true, mode, content.Length);
    }

    private static void Report(TextWriter error, string source, (string Path, bool Changed, UnixFileMode Mode, int Length) result) =>
        error.WriteLine(result.Changed
            ? $"install-cni: installed {source} as {result.Path} ({Octal(result.Mode)}, {result.Length} bytes)"
            : $"install-cni: {result.Path} is already {source} ({Octal(result.Mode)}, {result.Length} bytes)");

    private static string Octal(UnixFileMode mode) => Convert.ToString((int)mode, 8).PadLeft(4, '0');
}
