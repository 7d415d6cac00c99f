using System.Globalization;
using System.Text;

namespace Flannel.Benchmarks.Kernel;

/// <summary>The runs of one tool at one size; the median run is reported.</summary>
internal sealed record RunResult(PeerTool Tool, int Peers, IReadOnlyList<PhaseTimes> Runs, string? Error, IReadOnlyCollection<string> Warnings)
{
    public int Objects => Peers * Tool.ObjectsPerPeer;

    public double? ProgramSeconds => Median(r => r.Program.TotalSeconds);

    public double? DumpSeconds => Median(r => r.Dump?.TotalSeconds);

    public double? DeleteSeconds => Median(r => r.Delete.TotalSeconds);

    public string ToProgressLine() => Error is not null
        ? $"{Peers,6} peers  {Tool.Name,-20} FAILED: {Error}"
        : string.Create(CultureInfo.InvariantCulture,
            $"{Peers,6} peers  {Tool.Name,-20} program {ProgramSeconds,8:F3} s  dump {Seconds(DumpSeconds),7} s  delete {DeleteSeconds,8:F3} s{(Warnings.Count > 0 ? "  WARNING: " + string.Join("; ", Warnings) : "")}");

    private static string Seconds(double? seconds) => seconds is double s ? s.ToString("F3", CultureInfo.InvariantCulture) : "—";

    private double? Median(Func<PhaseTimes, double?> phase)
    {
        double[] values = Runs.Select(phase).OfType<double>().Order().ToArray();
        return values.Length == 0 ? null : values[values.Length / 2];
    }
}

/// <summary>Formats the results as the Markdown table docs/benchmarks.md carries.</summary>
internal static class Report
{
    public static string ToMarkdown(IReadOnlyList<RunResult> results, IReadOnlyList<PeerTool> tools, string environment, string[] args)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"Command: `dotnet run -c Release --project benchmarks/Flannel.Benchmarks -- kernel {string.Join(' ', args)}`");
        text.AppendLine();
        text.AppendLine(environment);
        text.AppendLine();
        text.AppendLine("| Peers | Tool | Objects | Program (s) | Objects/s | vs `ip -batch` | vs `ip -batch`, same form | Dump (s) | Delete (s) |");
        text.AppendLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (IGrouping<int, RunResult> size in results.GroupBy(r => r.Peers))
        {
            double? classicBaseline = size.FirstOrDefault(r => r.Tool.Name == "ip-batch")?.ProgramSeconds;
            double? nexthopBaseline = size.FirstOrDefault(r => r.Tool.Name == "ip-batch-nexthop")?.ProgramSeconds;
            foreach (RunResult result in size)
            {
                if (result.Error is not null)
                {
                    text.AppendLine(CultureInfo.InvariantCulture, $"| {result.Peers:N0} | {result.Tool.Name} | {result.Objects:N0} | failed: {Escape(result.Error)} | | | | | |");
                    continue;
                }

                double program = result.ProgramSeconds!.Value;
                double? sameForm = result.Tool.UsesNexthops ? nexthopBaseline : classicBaseline;
                text.AppendLine(CultureInfo.InvariantCulture,
                    $"| {result.Peers:N0} | {result.Tool.Name} | {result.Objects:N0} | {program:F3} | {result.Objects / program:N0} | {Ratio(classicBaseline, program)} | {Ratio(sameForm, program)} | {Seconds(result.DumpSeconds)} | {Seconds(result.DeleteSeconds)} |");
            }
        }

        text.AppendLine();
        text.AppendLine("Objects per peer: ARP entry, FDB entry and route (classic), plus a nexthop object (nexthop form). Program, dump and delete are separate phases; each (tool, size) ran in its own fresh namespace; times are the median of the runs. Ratios are `ip -batch` program seconds divided by the tool's (above 1 = faster than `ip -batch`).");
        foreach (string warning in results.SelectMany(r => r.Warnings.Select(w => $"{r.Peers:N0} peers: {w}")).Distinct())
        {
            text.AppendLine();
            text.AppendLine(CultureInfo.InvariantCulture, $"**Warning** ({warning}): its timings are kept because iproute2 confirmed every object.");
        }

        text.AppendLine();
        foreach (PeerTool tool in tools)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"- **{tool.Name}**: {tool.Description}");
        }

        return text.ToString();
    }

    private static string Ratio(double? baseline, double seconds)
        => baseline is double b ? string.Create(CultureInfo.InvariantCulture, $"{b / seconds:F2}×") : "—";

    private static string Seconds(double? seconds)
        => seconds is double s ? s.ToString("F3", CultureInfo.InvariantCulture) : "—";

    private static string Escape(string text) => text.Replace("|", "\\|", StringComparison.Ordinal).ReplaceLineEndings(" ");
}
