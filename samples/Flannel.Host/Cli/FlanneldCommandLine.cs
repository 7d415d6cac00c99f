using System.Collections;
using System.CommandLine;
using System.Net.Sockets;
using System.Reflection;
using System.Text;

namespace Flannel.Host.Cli;

/// <summary>A command line flanneld refuses; <see cref="ExitCode"/> is what flanneld exits with.</summary>
public sealed class FlanneldCommandLineException : Exception
{
    /// <summary>Go's flag package exits 2 on a usage error.</summary>
    public const int UsageExitCode = 2;

    /// <summary>flanneld exits 1 when a flag value is out of its accepted range.</summary>
    public const int ValidationExitCode = 1;

    /// <summary>Creates the exception.</summary>
    public FlanneldCommandLineException(string message, int exitCode)
        : base(message) => ExitCode = exitCode;

    /// <summary>Creates the exception with exit code 2.</summary>
    public FlanneldCommandLineException(string message)
        : this(message, UsageExitCode)
    {
    }

    /// <summary>Creates the exception with exit code 2.</summary>
    public FlanneldCommandLineException()
        : this("invalid command line", UsageExitCode)
    {
    }

    /// <summary>Creates the exception with exit code 2.</summary>
    public FlanneldCommandLineException(string message, Exception innerException)
        : base(message, innerException) => ExitCode = UsageExitCode;

    /// <summary>The process exit code flanneld uses for this error.</summary>
    public int ExitCode { get; }
}

/// <summary>
/// flanneld's command line: every flag of flannel's <c>main.go</c> with the same defaults, Go-flag syntax
/// (<c>-flag</c>, <c>--flag</c>, <c>--flag=value</c>, <c>--flag=false</c>), and the <c>FLANNELD_*</c>
/// environment fallback that applies only to flags absent from the command line.
/// </summary>
/// <remarks>
/// Go's argv syntax is tokenised first (<see cref="GoFlagTokenizer"/>), the occurrences are then handed to a
/// System.CommandLine <see cref="RootCommand"/> in canonical <c>--name value</c> form, which converts and
/// validates each value. Typical host use:
/// <code>return await FlanneldCommandLine.InvokeAsync(args, Environment.GetEnvironmentVariables(), RunAsync);</code>
/// </remarks>
public static class FlanneldCommandLine
{
    private static readonly FlagSpec[] Flags = CreateFlags();
    private static readonly Dictionary<string, FlagSpec> FlagsByName = Flags.ToDictionary(f => f.Name, StringComparer.Ordinal);

    /// <summary>Flannel's message when <c>--subnet-lease-renew-margin</c> is not in 1..1439.</summary>
    public const string RenewMarginOutOfRangeMessage = "Invalid subnet-lease-renew-margin option, out of acceptable range";

    /// <summary>The Go flag names flanneld accepts, in usage order.</summary>
    public static IReadOnlyList<string> FlagNames { get; } = Flags.Select(f => f.Name).Order(StringComparer.Ordinal).ToArray();

    /// <summary>The version <c>--version</c> prints: the informational version of the host assembly.</summary>
    public static string VersionText
    {
        get
        {
            Assembly assembly = typeof(FlanneldCommandLine).Assembly;
            string? informational = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
            return "v" + (informational ?? assembly.GetName().Version?.ToString() ?? "0.0.0");
        }
    }

    /// <summary>
    /// Creates the System.CommandLine root command with one option per flanneld flag (<c>--name</c>, alias
    /// <c>-name</c>), without System.CommandLine's own <c>--version</c> (flanneld's is a bool flag).
    /// </summary>
    public static RootCommand CreateRootCommand()
    {
        var root = new RootCommand("flanneld: the Flannel.NET reference host, a drop-in replacement for flannel's flanneld.");
        for (int i = root.Options.Count - 1; i >= 0; i--)
        {
            if (root.Options[i] is VersionOption)
            {
                root.Options.RemoveAt(i);
            }
        }

        foreach (FlagSpec flag in Flags)
        {
            root.Options.Add(flag.Option);
        }

        return root;
    }

    /// <summary>
    /// Parses <paramref name="args"/> (without the program name) and applies <c>FLANNELD_*</c> variables from
    /// <paramref name="environment"/> to the flags the command line did not set.
    /// </summary>
    /// <exception cref="FlanneldCommandLineException">A malformed command line, an unknown flag, a bad value
    /// (the message names the flag or variable and the value), or a renew margin outside 1..1439.</exception>
    public static FlanneldOptions Parse(IReadOnlyList<string> args, IDictionary? environment)
    {
        ArgumentNullException.ThrowIfNull(args);
        TokenizedCommandLine tokens = GoFlagTokenizer.Tokenize(args, FlagsByName);
        if (tokens.HelpRequested)
        {
            return new FlanneldOptions { HelpRequested = true };
        }

        var canonical = new List<string>(tokens.Flags.Count * 2);
        foreach (FlagOccurrence occurrence in tokens.Flags)
        {
            FlagSpec flag = FlagsByName[occurrence.Name];
            string value = occurrence.Value;
            if (flag.IsBool)
            {
                // System.CommandLine only binds "true"/"false" to a bool option; Go also takes 1, t, F, TRUE...
                try
                {
                    value = GoFlagValues.ParseBool(value) ? "true" : "false";
                }
                catch (FlagValueException e)
                {
                    throw new FlanneldCommandLineException(flag.CommandLineError(value, e.Message));
                }
            }

            canonical.Add("--" + occurrence.Name);
            canonical.Add(value);
        }

        RootCommand root = CreateRootCommand();
        ParseResult result = root.Parse(canonical, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (result.Errors.Count > 0)
        {
            throw new FlanneldCommandLineException(string.Join(Environment.NewLine, result.Errors.Select(e => e.Message).Distinct()));
        }

        var options = new FlanneldOptions();
        var fromCommandLine = new HashSet<string>(StringComparer.Ordinal);
        foreach (FlagSpec flag in Flags)
        {
            if (result.GetResult(flag.Option) is { Implicit: false })
            {
                options = flag.ApplyParsed(options, result);
                fromCommandLine.Add(flag.Name);
            }
        }

        options = options with { CommandLineFlags = fromCommandLine, ExtraArguments = tokens.ExtraArguments };

        // flanneld checks --version before it reads the environment or validates anything.
        if (options.Version)
        {
            return options;
        }

        var fromEnvironment = new HashSet<string>(StringComparer.Ordinal);
        foreach (FlagSpec flag in Flags)
        {
            if (!flag.ReadsEnvironment || fromCommandLine.Contains(flag.Name))
            {
                continue;
            }

            // flagutil ignores unset and empty variables.
            if (environment?[flag.EnvironmentVariable] is not string text || text.Length == 0)
            {
                continue;
            }

            try
            {
                options = flag.ApplyText(options, text);
            }
            catch (FlagValueException e)
            {
                throw new FlanneldCommandLineException($"invalid value \"{text}\" for {flag.EnvironmentVariable}: {e.Message}");
            }

            fromEnvironment.Add(flag.Name);
        }

        options = options with { EnvironmentFlags = fromEnvironment };
        if (options.SubnetLeaseRenewMarginMinutes is >= 24 * 60 or <= 0)
        {
            throw new FlanneldCommandLineException(RenewMarginOutOfRangeMessage, FlanneldCommandLineException.ValidationExitCode);
        }

        return options;
    }

    /// <summary>
    /// The whole front end of flanneld: parses, prints the usage (<c>-h</c>, exit 0), the version
    /// (<c>--version</c>, to stderr, exit 0) or the error (exit 2, or 1 for the renew margin), and otherwise
    /// runs <paramref name="run"/> and returns its exit code.
    /// </summary>
    public static async Task<int> InvokeAsync(IReadOnlyList<string> args, IDictionary? environment,
        Func<FlanneldOptions, CancellationToken, Task<int>> run, TextWriter? error = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(run);
        error ??= Console.Error;
        FlanneldOptions options;
        try
        {
            options = Parse(args, environment);
        }
        catch (FlanneldCommandLineException e)
        {
            await error.WriteLineAsync(e.Message).ConfigureAwait(false);
            if (e.ExitCode == FlanneldCommandLineException.UsageExitCode)
            {
                await error.WriteAsync(GetUsage()).ConfigureAwait(false);
            }

            return e.ExitCode;
        }

        if (options.HelpRequested)
        {
            await error.WriteAsync(GetUsage()).ConfigureAwait(false);
            return 0;
        }

        if (options.Version)
        {
            await error.WriteLineAsync(VersionText).ConfigureAwait(false);
            return 0;
        }

        return await run(options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The usage text in the layout of Go's <c>flag.PrintDefaults</c>, flags sorted by name.</summary>
    public static string GetUsage(string programName = "flanneld")
    {
        var text = new StringBuilder();
        text.Append("Usage: ").Append(programName).Append(" [OPTION]...\n");
        foreach (FlagSpec flag in Flags.OrderBy(f => f.Name, StringComparer.Ordinal))
        {
            text.Append("  -").Append(flag.Name);
            if (flag.TypeWord.Length > 0)
            {
                text.Append(' ').Append(flag.TypeWord);
            }

            text.Append("\n    \t").Append(flag.Usage.Replace("\n", "\n    \t", StringComparison.Ordinal));
            if (flag.DefaultText is not null)
            {
                text.Append(" (default ").Append(flag.DefaultText).Append(')');
            }

            text.Append('\n');
        }

        return text.ToString();
    }

    private static FlagSpec[] CreateFlags()
    {
        static FlagSpec Str(string name, string usage, string defaultValue, Func<FlanneldOptions, string, FlanneldOptions> store) =>
            FlagSpec<string>.Create(name, usage, defaultValue.Length == 0 ? null : $"\"{defaultValue}\"", s => s, store);

        static FlagSpec Bool(string name, string usage, bool defaultValue, Func<FlanneldOptions, bool, FlanneldOptions> store, bool readsEnvironment = true) =>
            FlagSpec<bool>.Create(name, usage, defaultValue ? "true" : null, GoFlagValues.ParseBool, store, readsEnvironment);

        return
        [
            Str("etcd-endpoints", "a comma-delimited list of etcd endpoints", "http://127.0.0.1:4001,http://127.0.0.1:2379",
                (o, v) => o with { EtcdEndpoints = v }),
            Str("etcd-prefix", "etcd prefix", "/coreos.com/network", (o, v) => o with { EtcdPrefix = v }),
            Str("etcd-keyfile", "SSL key file used to secure etcd communication", "", (o, v) => o with { EtcdKeyFile = v }),
            Str("etcd-certfile", "SSL certification file used to secure etcd communication", "", (o, v) => o with { EtcdCertFile = v }),
            Str("etcd-cafile", "SSL Certificate Authority file used to secure etcd communication", "", (o, v) => o with { EtcdCAFile = v }),
            Str("etcd-username", "username for BasicAuth to etcd", "", (o, v) => o with { EtcdUsername = v }),
            Str("etcd-password", "password for BasicAuth to etcd", "", (o, v) => o with { EtcdPassword = v }),
            new RepeatableFlagSpec("iface",
                "interface to use (IP or name) for inter-host communication. Can be specified multiple times to check each option in order. Returns the first match found.",
                s => s, (o, v) => o with { Interfaces = v }),
            new RepeatableFlagSpec("iface-regex",
                "regex expression to match the first interface to use (IP or name) for inter-host communication. Can be specified multiple times to check each regex in order. Returns the first match found. Regexes are checked after specific interfaces specified by the iface option have already been checked.",
                GoFlagValues.ParseRegex, (o, v) => o with { InterfaceRegexes = v }),
            FlagSpec<System.Net.IPAddress?>.Create("iface-can-reach",
                "detect interface to use (IP or name) for inter-host communication based on which will be used for provided IP. This is exactly the interface to use of command 'ip route get <ip-address>'",
                null, GoFlagValues.ParseOptionalAnyAddress, (o, v) => o with { InterfaceCanReach = v }),
            Str("subnet-file", "filename where env variables (subnet, MTU, ... ) will be written to", FlanneldOptions.DefaultSubnetFile,
                (o, v) => o with { SubnetFile = v }),
            FlagSpec<System.Net.IPAddress?>.Create("public-ip", "IP accessible by other nodes for inter-host communication", null,
                s => GoFlagValues.ParseOptionalAddress(s, AddressFamily.InterNetwork), (o, v) => o with { PublicIP = v }),
            FlagSpec<System.Net.IPAddress?>.Create("public-ipv6", "IPv6 accessible by other nodes for inter-host communication", null,
                s => GoFlagValues.ParseOptionalAddress(s, AddressFamily.InterNetworkV6), (o, v) => o with { PublicIPv6 = v }),
            // The 1..1439 range is checked after the environment is applied, with flannel's own message and exit code 1.
            FlagSpec<int>.Create("subnet-lease-renew-margin", "subnet lease renewal margin, in minutes, ranging from 1 to 1439", "60",
                GoFlagValues.ParseInt, (o, v) => o with { SubnetLeaseRenewMarginMinutes = v }),
            Bool("ip-masq", "setup IP masquerade rule for traffic destined outside of overlay network", false, (o, v) => o with { IPMasq = v }),
            Bool("ip-masq-fully-random-disable", "disable the --random-fully option of the masquerade rules (fully random source port mapping)", false,
                (o, v) => o with { IPMasqFullyRandomDisable = v }),
            Bool("kube-subnet-mgr", "contact the Kubernetes API for subnet assignment instead of etcd.", false, (o, v) => o with { KubeSubnetManager = v }),
            Str("kube-api-url", "Kubernetes API server URL. Does not need to be specified if flannel is running in a pod.", "",
                (o, v) => o with { KubeApiUrl = v }),
            Str("kube-annotation-prefix", "Kubernetes annotation prefix. Can contain single slash \"/\", otherwise it will be appended at the end.",
                "flannel.alpha.coreos.com", (o, v) => o with { KubeAnnotationPrefix = v }),
            Str("kubeconfig-file", "kubeconfig file location. Does not need to be specified if flannel is running in a pod.", "",
                (o, v) => o with { KubeConfigFile = v }),
            Bool("version", "print version and exit", false, (o, v) => o with { Version = v }, readsEnvironment: false),
            FlagSpec<System.Net.IPAddress>.Create("healthz-ip", "the IP address for healthz server to listen", "\"0.0.0.0\"",
                s => GoFlagValues.ParseOptionalAnyAddress(s) ?? throw new FlagValueException("not an IP address"),
                (o, v) => o with { HealthzIP = v }),
            FlagSpec<int>.Create("healthz-port", "the port for healthz server to listen(0 to disable)", null,
                s => GoFlagValues.ParseIntInRange(s, 0, 65535), (o, v) => o with { HealthzPort = v }),
            FlagSpec<int>.Create("iptables-resync", "resync period for iptables rules, in seconds", "5",
                s => GoFlagValues.ParseIntInRange(s, 1, int.MaxValue), (o, v) => o with { IptablesResyncSeconds = v }),
            Bool("iptables-forward-rules", "add default accept rules to FORWARD chain in iptables", true, (o, v) => o with { IptablesForwardRules = v }),
            Bool("ip-blackhole-route", "add a blackhole route on the node for the local podCIDR", false, (o, v) => o with { IPBlackholeRoute = v }),
            // Flannel.NET's own: the fabric health features (docs/health.md).
            Str("status-socket", "unix socket where the agent serves its fabric status for `flanneld status` and `flanneld doctor` (empty to disable)",
                Flannel.Agent.Status.StatusSocketOptions.DefaultPath, (o, v) => o with { StatusSocket = v }),
            FlagSpec<TimeSpan>.Create("probe-interval", "probe every peer over the overlay and the underlay once per interval (0 to disable)", "1m0s",
                s => GoFlagValues.ParseDuration(s, allowZero: true), (o, v) => o with { ProbeInterval = v }),
            FlagSpec<TimeSpan>.Create("probe-timeout", "how long a peer probe waits for its reply", "1s",
                s => GoFlagValues.ParseDuration(s, allowZero: false), (o, v) => o with { ProbeTimeout = v }),
            Bool("probe-per-peer-metrics", "label flannel_peer_reachable per peer (one series per peer and path)", false, (o, v) => o with { ProbePerPeerMetrics = v }),
            Bool("status-http", "also serve the fabric status as JSON under /status on the healthz port", false, (o, v) => o with { StatusHttp = v }),
            Str("net-config-path", "path to the network configuration file", "/etc/kube-flannel/net-conf.json", (o, v) => o with { NetConfigPath = v }),
            Bool("set-node-network-unavailable", "set NodeNetworkUnavailable after ready", true, (o, v) => o with { SetNodeNetworkUnavailable = v }),
            // klog flags flanneld copies onto its flag set (it always logs to stderr).
            FlagSpec<int>.Create("v", "number for the log level verbosity", null, GoFlagValues.ParseVerbosity, (o, v) => o with { Verbosity = v }),
            FlagSpec<string>.Create("vmodule", "comma-separated list of pattern=N settings for file-filtered logging", null,
                GoFlagValues.ParseVModule, (o, v) => o with { VModule = v }),
            FlagSpec<string>.Create("log_backtrace_at", "when logging hits line file:N, emit a stack trace", null,
                GoFlagValues.ParseTraceLocation, (o, v) => o with { LogBacktraceAt = v }),
        ];
    }
}
