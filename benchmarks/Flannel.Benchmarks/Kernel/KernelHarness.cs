using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Flannel.Benchmarks.Kernel;

/// <summary>
/// Kernel programming throughput: for each N, each tool programs N peers (ARP entry, FDB entry, route;
/// plus a nexthop object in the nexthop form) into its own fresh namespace, dumps them and deletes them.
/// Prints a Markdown table with seconds, objects/s and the ratio against <c>ip -batch</c> measured in the
/// same run. Needs root (it creates namespaces); never touches the root namespace.
/// </summary>
/// <example>
/// <code>
/// dotnet run -c Release --project benchmarks/Flannel.Benchmarks -- kernel --sizes 1000,10000 --repeat 3
/// </code>
/// </example>
internal static class KernelHarness
{
    private const int WarmUpPeers = 2_000;

    private const string Usage = """
        usage: Flannel.Benchmarks kernel [options]
          --sizes LIST        peer counts, comma separated (default 1000,10000; 50000 classic takes minutes)
          --tools LIST        tools to run, comma separated (default: all available)
                              flannel, flannel-nexthop, floor, floor-nexthop, ip-batch, ip-batch-nexthop,
                              vishvananda, vishvananda-handle
          --classic-max N     skip classic-route tools above N peers (default: no limit)
          --batch-peers N     peers per INetlink.ApplyAsync batch (default 1024)
          --repeat N          runs per tool and size; the median program time is reported (default 1)
          --go-binary PATH    prebuilt benchmarks/peers/kernel program (default: build it with
                              benchmarks/peers/build-go-kernel.sh)
          --markdown FILE     also write the table to FILE
          --no-warmup         skip the untimed warm-up runs of the in-process (.NET) tools
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        HarnessOptions options;
        try
        {
            options = HarnessOptions.Parse(args);
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync(e.Message + Environment.NewLine + Usage);
            return 2;
        }

        if (options.Help)
        {
            Console.WriteLine(Usage);
            return 0;
        }

        if (Environment.UserName != "root")
        {
            await Console.Error.WriteLineAsync("kernel: must run as root (it creates network namespaces)");
            return 2;
        }

        // SIGINT and SIGTERM cancel the run instead of killing the process, so the namespace in use is
        // still deleted (a background job started by a non-interactive shell ignores SIGINT: use SIGTERM).
        using var cancellation = new CancellationTokenSource();
        void Cancel(PosixSignalContext context)
        {
            context.Cancel = true;
            cancellation.Cancel();
        }

        using var onInterrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
        using var onTerminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);

        string workDirectory = Directory.CreateTempSubdirectory("flannel-kernel-bench-").FullName;
        try
        {
            List<PeerTool> tools = await CreateToolsAsync(options, workDirectory, cancellation.Token);
            string environment = await DescribeEnvironmentAsync(cancellation.Token);
            Console.WriteLine(environment);

            if (!options.NoWarmUp)
            {
                await WarmUpAsync(tools, workDirectory, cancellation.Token);
            }

            // Rounds interleave the tools (tool A, B, C, A, B, C, ...) so that a change in machine load
            // during the run hits every tool alike; each run gets its own fresh namespace.
            var results = new List<RunResult>();
            foreach (int size in options.Sizes)
            {
                PeerSet peers = PeerSet.Generate(size);
                PeerTool[] selected = tools.Where(t => t.UsesNexthops || options.ClassicMax is not int max || size <= max).ToArray();
                var runs = selected.ToDictionary(t => t, _ => new List<PhaseTimes>());
                var errors = new Dictionary<PeerTool, string>();
                var warnings = selected.ToDictionary(t => t, _ => new HashSet<string>());
                for (int round = 0; round < options.Repeat; round++)
                {
                    foreach (PeerTool tool in selected.Where(t => !errors.ContainsKey(t)))
                    {
                        string? error = await MeasureOnceAsync(tool, peers, runs[tool], warnings[tool], workDirectory, cancellation.Token);
                        if (error is not null)
                        {
                            errors[tool] = error;
                        }

                        Console.WriteLine(new RunResult(tool, size, runs[tool].TakeLast(1).ToList(), error, warnings[tool]).ToProgressLine());
                    }
                }

                results.AddRange(selected.Select(t => new RunResult(t, size, runs[t], errors.GetValueOrDefault(t), warnings[t])));
            }

            string loadAtEnd = (await File.ReadAllTextAsync("/proc/loadavg", cancellation.Token)).Trim();
            string table = Report.ToMarkdown(results, tools, $"{environment}; at end: {loadAtEnd}", args);
            Console.WriteLine();
            Console.WriteLine(table);
            if (options.MarkdownFile is not null)
            {
                await File.WriteAllTextAsync(options.MarkdownFile, table, cancellation.Token);
            }

            return results.Any(r => r.Error is not null) ? 1 : 0;
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync("kernel: interrupted");
            return 130;
        }
        finally
        {
            Directory.Delete(workDirectory, recursive: true);
        }
    }

    /// <summary>
    /// Runs each in-process tool untimed, twice on 2,000 peers in throwaway namespaces, so the measured runs
    /// execute tiered-up JIT code as a long-running agent would (pass --no-warmup to measure a cold start).
    /// </summary>
    private static async Task WarmUpAsync(IEnumerable<PeerTool> tools, string workDirectory, CancellationToken cancellationToken)
    {
        PeerSet peers = PeerSet.Generate(WarmUpPeers);
        foreach (PeerTool tool in tools.Where(t => t.NeedsWarmUp))
        {
            for (int round = 0; round < 2; round++)
            {
                var ignored = new List<PhaseTimes>();
                string? error = await MeasureOnceAsync(tool, peers, ignored, [], workDirectory, cancellationToken);
                if (error is not null)
                {
                    await Console.Error.WriteLineAsync($"kernel: warm-up of {tool.Name} failed: {error}");
                    break;
                }
            }
        }
    }

    /// <summary>Runs <paramref name="tool"/> once in a fresh namespace; returns an error text when the run failed.</summary>
    private static async Task<string?> MeasureOnceAsync(PeerTool tool, PeerSet peers, List<PhaseTimes> runs, HashSet<string> warnings, string workDirectory, CancellationToken cancellationToken)
    {
        await using BenchmarkNamespace ns = await BenchmarkNamespace.CreateAsync(cancellationToken);
        try
        {
            PhaseTimes times = await tool.RunAsync(ns, peers, workDirectory, cancellationToken);
            (string? error, string? warning) = Verify(tool, peers.Count, times, await ns.CountObjectsAsync(cancellationToken));
            if (error is null)
            {
                runs.Add(times);
            }

            if (warning is not null)
            {
                warnings.Add(warning);
            }

            return error;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return e.Message;
        }
    }

    /// <summary>
    /// A run only counts when every object was really programmed and really deleted: iproute2 must find N of
    /// each kind after the program phase (when the tool can pause there; otherwise the tool's own dump must)
    /// and nothing after the delete phase. A tool whose own dump disagrees with iproute2 keeps its timings
    /// but gets a warning in the report.
    /// </summary>
    private static (string? Error, string? Warning) Verify(PeerTool tool, int peers, PhaseTimes times, ObjectCounts left)
    {
        bool Complete(ObjectCounts c) => c.Routes == peers && c.Neighbours == peers && c.FdbEntries == peers
            && (!tool.UsesNexthops || c.Nexthops == peers);

        if (times.Programmed is ObjectCounts programmed && !Complete(programmed))
        {
            return ($"after programming, iproute2 found {programmed}; expected {peers} of each", null);
        }

        string? warning = null;
        if (!Complete(times.Dumped))
        {
            if (times.Programmed is null)
            {
                return ($"the tool's dump returned {times.Dumped}; expected {peers} of each", null);
            }

            warning = $"{tool.Name}'s own dump returned {times.Dumped} while iproute2 found {peers} of each";
        }

        return left == default ? (null, warning) : ($"left behind after delete: {left}", warning);
    }

    private static async Task<List<PeerTool>> CreateToolsAsync(HarnessOptions options, string workDirectory, CancellationToken cancellationToken)
    {
        var tools = new List<PeerTool>();
        string? goBinary = options.GoBinary;
        foreach (string name in options.Tools)
        {
            switch (name)
            {
                case "flannel":
                case "flannel-nexthop":
                    if (!FlannelNetlink.IsAvailable)
                    {
                        await Console.Error.WriteLineAsync($"kernel: skipping {name}: RtNetlink is not in this build");
                        continue;
                    }

                    tools.Add(new FlannelTool(name == "flannel-nexthop", options.BatchPeers));
                    break;
                case "floor":
                case "floor-nexthop":
                    tools.Add(new KernelFloorTool(name == "floor-nexthop"));
                    break;
                case "ip-batch":
                case "ip-batch-nexthop":
                    tools.Add(new IpBatchTool(name == "ip-batch-nexthop"));
                    break;
                case "vishvananda":
                case "vishvananda-handle":
                    goBinary ??= await BuildGoPeerProgramAsync(workDirectory, cancellationToken);
                    tools.Add(new VishvanandaTool(goBinary, name == "vishvananda-handle"));
                    break;
                default:
                    throw new ArgumentException($"unknown tool '{name}'");
            }
        }

        return tools;
    }

    private static async Task<string> BuildGoPeerProgramAsync(string workDirectory, CancellationToken cancellationToken)
    {
        string script = Path.Combine(RepositoryRoot(), "benchmarks", "peers", "build-go-kernel.sh");
        string binary = Path.Combine(workDirectory, "vishvananda-peers");
        await ProcessRunner.RunAsync(script, [binary], cancellationToken);
        return binary;
    }

    private static string RepositoryRoot()
    {
        for (DirectoryInfo? directory = new(Environment.CurrentDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Flannel.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("run from inside the repository (Flannel.sln not found above the current directory), or pass --go-binary");
    }

    private static async Task<string> DescribeEnvironmentAsync(CancellationToken cancellationToken)
    {
        string iproute = (await ProcessRunner.RunAsync("ip", ["-V"], cancellationToken)).Trim();
        string kernel = (await File.ReadAllTextAsync("/proc/sys/kernel/osrelease", cancellationToken)).Trim();
        string load = (await File.ReadAllTextAsync("/proc/loadavg", cancellationToken)).Trim();
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"Linux {kernel}, {Environment.ProcessorCount} CPUs, {RuntimeInformation.FrameworkDescription}, {iproute}");
        text.Append(CultureInfo.InvariantCulture, $"; load average at start: {load}");
        return text.ToString();
    }
}

/// <summary>Parsed command line of the <c>kernel</c> mode.</summary>
internal sealed record HarnessOptions(
    IReadOnlyList<int> Sizes,
    IReadOnlyList<string> Tools,
    int? ClassicMax,
    int BatchPeers,
    int Repeat,
    string? GoBinary,
    string? MarkdownFile,
    bool NoWarmUp,
    bool Help)
{
    public static readonly string[] AllTools =
        ["ip-batch", "ip-batch-nexthop", "vishvananda", "vishvananda-handle", "flannel", "flannel-nexthop", "floor", "floor-nexthop"];

    public static HarnessOptions Parse(string[] args)
    {
        var options = new HarnessOptions([1_000, 10_000], AllTools, null, 1024, 1, null, null, false, false);
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            options = args[i] switch
            {
                "--sizes" => options with { Sizes = ParseList(Value(), "--sizes").Select(s => ParseCount(s, "--sizes", PeerSet.MaxPeers)).ToArray() },
                "--tools" => options with { Tools = ParseList(Value(), "--tools").Select(t => AllTools.Contains(t) ? t : throw new ArgumentException($"--tools: unknown tool '{t}'")).ToArray() },
                "--classic-max" => options with { ClassicMax = ParseCount(Value(), "--classic-max", int.MaxValue) },
                "--batch-peers" => options with { BatchPeers = ParseCount(Value(), "--batch-peers", 65_535) },
                "--repeat" => options with { Repeat = ParseCount(Value(), "--repeat", 100) },
                "--go-binary" => options with { GoBinary = Path.GetFullPath(Value()) },
                "--markdown" => options with { MarkdownFile = Path.GetFullPath(Value()) },
                "--no-warmup" => options with { NoWarmUp = true },
                "--help" or "-h" => options with { Help = true },
                _ => throw new ArgumentException($"unknown option '{args[i]}'"),
            };
        }

        return options;
    }

    private static string[] ParseList(string value, string option)
    {
        string[] items = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return items.Length > 0 ? items : throw new ArgumentException($"{option}: empty list");
    }

    private static int ParseCount(string value, string option, int max)
        => int.TryParse(value.Replace("_", "", StringComparison.Ordinal), NumberStyles.None, CultureInfo.InvariantCulture, out int count) && count > 0 && count <= max
            ? count
            : throw new ArgumentException($"{option}: '{value}' is not a count between 1 and {max}");
}
