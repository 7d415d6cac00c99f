using System.Globalization;
using System.Reflection;
using System.Text;

namespace Flannel.Cni;

/// <summary>
/// The plugin's entry point, following CNI's <c>skel</c> dispatcher: environment checks, netconf and
/// container-ID/interface-name validation, version reconciliation, then ADD/DEL/CHECK/VERSION. Every failure
/// becomes a CNI error document on stdout and exit status 1.
/// </summary>
internal sealed class CniPlugin(IReadOnlyDictionary<string, string> environment, IPluginRunner runner, TextWriter stdout, TextWriter stderr)
{
    /// <summary>The CNI spec versions this plugin speaks (those flannel's plugin declares).</summary>
    public static readonly string[] SupportedVersions = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

    private const string LatestVersion = "1.1.0";

    private static readonly (string Name, string[] RequiredFor)[] EnvironmentVariables =
    [
        ("CNI_COMMAND", ["ADD", "CHECK", "DEL"]),
        ("CNI_CONTAINERID", ["ADD", "CHECK", "DEL"]),
        ("CNI_NETNS", ["ADD", "CHECK"]),
        ("CNI_IFNAME", ["ADD", "CHECK", "DEL"]),
        ("CNI_ARGS", []),
        ("CNI_PATH", ["ADD", "CHECK", "DEL"]),
    ];

    /// <summary>Runs one command; returns the process exit status.</summary>
    public int Run(byte[] stdin)
    {
        string errorVersion = LatestVersion;
        try
        {
            string command = Get("CNI_COMMAND");
            var missing = EnvironmentVariables
                .Where(v => Get(v.Name).Length == 0 && (v.Name == "CNI_COMMAND" || v.RequiredFor.Contains(command)))
                .Select(v => v.Name)
                .ToList();
            if (missing.Count > 0)
            {
                if (command.Length == 0)
                {
                    // Run by hand: print what this is, as skel does.
                    stderr.WriteLine($"CNI Plugin flannel version {Version} ({RuntimeInfo}) (Flannel.NET)");
                    stderr.WriteLine($"CNI protocol versions supported: {string.Join(", ", SupportedVersions)}");
                    return 0;
                }

                throw new CniException(CniErrorCode.InvalidEnvironmentVariables, $"required env variables [{string.Join(',', missing)}] missing");
            }

            if (command == "VERSION")
            {
                byte[] versions = GoJson.Serialize(new GoStruct { { "cniVersion", LatestVersion }, { "supportedVersions", SupportedVersions } });
                stdout.Write(Encoding.UTF8.GetString(versions));
                stdout.Write('\n');
                return 0;
            }

            NetConf conf = NetConf.Parse(stdin);
            errorVersion = conf.CniVersion.Length > 0 ? conf.CniVersion : LatestVersion;
            ValidateNetworkName(conf.Name);
            ValidateContainerId(Get("CNI_CONTAINERID"));
            ValidateInterfaceName(Get("CNI_IFNAME"));

            switch (command)
            {
                case "ADD":
                    CheckVersion(conf);
                    Add(conf);
                    break;
                case "DEL":
                    CheckVersion(conf);
                    Delete(conf);
                    break;
                case "CHECK":
                    RequireAtLeast(conf, "0.4.0", "CHECK");
                    CheckVersion(conf);
                    break; // flannel's CHECK is a no-op
                case "GC" or "STATUS":
                    RequireAtLeast(conf, "1.1.0", command);
                    CheckVersion(conf);
                    break; // nothing of flannel's own to collect or report
                default:
                    throw new CniException(CniErrorCode.InvalidEnvironmentVariables, $"unknown CNI_COMMAND: {command}");
            }

            return 0;
        }
        catch (CniException e)
        {
            stdout.Write(e.ToJson(errorVersion));
            stdout.Write('\n');
            return 1;
        }
#pragma warning disable CA1031 // A runtime only understands the error document: never die with a bare stack trace.
        catch (Exception e)
#pragma warning restore CA1031
        {
            stderr.WriteLine(e.ToString());
            stdout.Write(new CniException(CniErrorCode.Internal, e.Message).ToJson(errorVersion));
            stdout.Write('\n');
            return 1;
        }
    }

    private void Add(NetConf conf)
    {
        SubnetEnv env = SubnetEnv.Load(conf.SubnetFile);
        Dictionary<string, object?> @delegate = DelegateBuilder.Build(conf, env);
        byte[] netconf = GoJson.Serialize(@delegate);
        stderr.Write("delegateAdd: netconf sent to delegate plugin:\n");
        stderr.Write(Encoding.UTF8.GetString(netconf));
        stderr.Write('\n');

        string containerId = Get("CNI_CONTAINERID");
        try
        {
            ScratchStore.Save(conf.DataDir, containerId, netconf);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CniException(CniErrorCode.Internal, $"failed to save the delegate netconf in {conf.DataDir}: {GoErrno.Describe(e)}");
        }

        // The saved file is in place (a killed plugin still leaves DEL what it needs); its fsyncs run while the
        // delegate works and must finish before ADD reports success.
        Exception? flushError = null;
        var flush = new Thread(() =>
        {
            try
            {
                ScratchStore.MakeDurable(conf.DataDir, containerId);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                flushError = e;
            }
        });
        flush.Start();
        byte[] result;
        try
        {
            result = new DelegateInvoker(runner, environment).Invoke("ADD", (string)@delegate["type"]!, netconf);
        }
        finally
        {
            flush.Join();
        }

        if (flushError is not null)
        {
            // The runtime answers a failed ADD with DEL, which finds the file and undoes the delegate's work.
            throw new CniException(CniErrorCode.Internal, $"failed to save the delegate netconf in {conf.DataDir}: {GoErrno.Describe(flushError)}");
        }

        stdout.Write(Encoding.UTF8.GetString(result));
    }

    private void Delete(NetConf conf)
    {
        string containerId = Get("CNI_CONTAINERID");
        byte[]? stored;
        try
        {
            stored = ScratchStore.TryLoad(conf.DataDir, containerId);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CniException(CniErrorCode.Internal, $"open {Path.Combine(conf.DataDir, containerId)}: {GoErrno.Describe(e)}");
        }

        if (stored is null)
        {
            return; // already deleted, or never added: DEL must succeed
        }

        string? type;
        try
        {
            type = GoJson.Parse(stored) is Dictionary<string, object?> saved && saved.TryGetValue("type", out object? t) ? t as string : null;
        }
        catch (System.Text.Json.JsonException e)
        {
            // As flannel: the interface stays in the bridge until reboot, and DEL still succeeds.
            stderr.Write($"failed to parse netconf: {e.Message}");
            return;
        }

        // Unlike flannel (which removes the file even when the delegate fails), keep it on failure so the
        // runtime's DEL retry can still release the IP and the veth.
        new DelegateInvoker(runner, environment).Invoke("DEL", type ?? "", stored);
        ScratchStore.Delete(conf.DataDir, containerId);
    }

    private static void CheckVersion(NetConf conf)
    {
        string version = conf.EffectiveCniVersion;
        if (!SupportedVersions.Contains(version))
        {
            throw new CniException(CniErrorCode.IncompatibleCniVersion, "incompatible CNI versions",
                $"config is \"{version}\", plugin supports [{string.Join(' ', SupportedVersions.Select(v => $"\"{v}\""))}]");
        }
    }

    private static void RequireAtLeast(NetConf conf, string minimum, string command)
    {
        string version = conf.EffectiveCniVersion;
        if (!System.Version.TryParse(version, out Version? parsed))
        {
            throw new CniException(CniErrorCode.DecodingFailure, $"unable to parse CNI version \"{version}\"");
        }

        if (parsed < System.Version.Parse(minimum))
        {
            throw new CniException(CniErrorCode.IncompatibleCniVersion, $"config version does not allow {command}");
        }
    }

    private static void ValidateNetworkName(string name)
    {
        if (name.Length == 0)
        {
            throw new CniException(CniErrorCode.InvalidNetworkConfig, "missing network name");
        }

        if (!IsValidCniName(name))
        {
            throw new CniException(CniErrorCode.InvalidNetworkConfig, "invalid characters found in network name", name);
        }
    }

    /// <summary>The container ID becomes a file name in dataDir, so it must be a plain CNI name.</summary>
    private static void ValidateContainerId(string containerId)
    {
        if (!IsValidCniName(containerId))
        {
            throw new CniException(CniErrorCode.InvalidEnvironmentVariables, "invalid characters in containerID", containerId);
        }
    }

    private static void ValidateInterfaceName(string name)
    {
        if (name.Length > 15)
        {
            throw new CniException(CniErrorCode.InvalidEnvironmentVariables, "interface name is too long", "interface name should be less than 16 characters");
        }

        if (name is "." or "..")
        {
            throw new CniException(CniErrorCode.InvalidEnvironmentVariables, "interface name is . or ..");
        }

        if (name.Any(c => c is '/' or ':' || char.IsWhiteSpace(c)))
        {
            throw new CniException(CniErrorCode.InvalidEnvironmentVariables, "interface name contains / or : or whitespace characters");
        }
    }

    /// <summary>CNI's name syntax: <c>^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$</c>.</summary>
    private static bool IsValidCniName(string name) =>
        name.Length > 0 && char.IsAsciiLetterOrDigit(name[0])
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-');

    private string Get(string name) => environment.TryGetValue(name, out string? value) ? value : "";

    private static string Version =>
        typeof(CniPlugin).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    private static string RuntimeInfo =>
        $"linux/{System.Runtime.InteropServices.RuntimeInformation.OSArchitecture.ToString().ToLower(CultureInfo.InvariantCulture)}";
}
