using System.Globalization;
using System.Text;
using System.Text.Json.Serialization;

namespace Flannel.Agent.Doctor;

/// <summary>How bad a finding is.</summary>
public enum FindingSeverity
{
    /// <summary>The check passed.</summary>
    [JsonStringEnumMemberName("ok")]
    Ok,

    /// <summary>Worth knowing; nothing is broken (e.g. a check that could not run here).</summary>
    [JsonStringEnumMemberName("info")]
    Info,

    /// <summary>Not broken now, but fragile or against recommendations.</summary>
    [JsonStringEnumMemberName("warning")]
    Warning,

    /// <summary>Breaks pod traffic (for some peers or all).</summary>
    [JsonStringEnumMemberName("error")]
    Error,
}

/// <summary>One result of one check: what was found, the evidence, and the commands that fix it.</summary>
/// <param name="Check">The check's id, e.g. <c>mtu</c>, <c>vxlan-port</c>.</param>
/// <param name="Severity">How bad it is.</param>
/// <param name="Summary">One sentence, naming the objects (device, peer, rule) concerned.</param>
/// <param name="Evidence">What was read that shows it (values, command output lines).</param>
/// <param name="Fix">Commands (or one-line instructions) that fix it; empty for a passing check.</param>
public sealed record DoctorFinding(string Check, FindingSeverity Severity, string Summary, IReadOnlyList<string> Evidence, IReadOnlyList<string> Fix)
{
    /// <summary>A passing check.</summary>
    public static DoctorFinding Pass(string check, string summary, params string[] evidence) => new(check, FindingSeverity.Ok, summary, evidence, []);
}

/// <summary>Everything <c>flanneld doctor</c> found on one node.</summary>
public sealed record DoctorReport
{
    /// <summary>The schema version of this document.</summary>
    public int ApiVersion { get; init; } = 1;

    /// <summary>The node (agent name, or the host name).</summary>
    public required string Node { get; init; }

    /// <summary>Where the leases came from (the agent's status socket, or the store).</summary>
    public required string LeaseSource { get; init; }

    /// <summary>Every finding, passing checks included, errors first.</summary>
    public required IReadOnlyList<DoctorFinding> Findings { get; init; }

    /// <summary>Findings of severity error.</summary>
    public int Errors => Findings.Count(f => f.Severity == FindingSeverity.Error);

    /// <summary>Findings of severity warning.</summary>
    public int Warnings => Findings.Count(f => f.Severity == FindingSeverity.Warning);

    /// <summary>The process exit code: 1 with any error, 0 otherwise (warnings do not fail a script).</summary>
    public int ExitCode => Errors > 0 ? 1 : 0;

    /// <summary>The report as <c>flanneld doctor</c> prints it: one block per finding, then a summary line.</summary>
    public string ToText()
    {
        var text = new StringBuilder();
        text.Append("flanneld doctor on ").Append(Node).Append(" (leases from ").Append(LeaseSource).Append(")\n\n");
        foreach (DoctorFinding finding in Findings)
        {
            text.Append(Label(finding.Severity).PadRight(6)).Append(finding.Check.PadRight(18)).Append(finding.Summary).Append('\n');
            foreach (string evidence in finding.Evidence)
            {
                text.Append(' ', 24).Append("evidence: ").Append(evidence).Append('\n');
            }

            for (int i = 0; i < finding.Fix.Count; i++)
            {
                text.Append(' ', 24).Append(i == 0 ? "fix:      " : "          ").Append(finding.Fix[i]).Append('\n');
            }
        }

        int passed = Findings.Count(f => f.Severity == FindingSeverity.Ok);
        int infos = Findings.Count(f => f.Severity == FindingSeverity.Info);
        text.Append('\n').Append(CultureInfo.InvariantCulture, $"{Errors} error{(Errors == 1 ? string.Empty : "s")}, {Warnings} warning{(Warnings == 1 ? string.Empty : "s")}, {infos} note{(infos == 1 ? string.Empty : "s")}, {passed} passed\n");
        return text.ToString();
    }

    private static string Label(FindingSeverity severity) => severity switch
    {
        FindingSeverity.Error => "ERROR",
        FindingSeverity.Warning => "WARN",
        FindingSeverity.Info => "INFO",
        _ => "OK",
    };

    /// <summary>The report as JSON (<c>flanneld doctor -o json</c>: camelCase, enums as strings).</summary>
    public string ToJson() => System.Text.Json.JsonSerializer.Serialize(this, DoctorJsonContext.Default.DoctorReport);
}

/// <summary>Source-generated JSON for <c>flanneld doctor -o json</c>.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    UseStringEnumConverter = true,
    WriteIndented = true)]
[JsonSerializable(typeof(DoctorReport))]
internal sealed partial class DoctorJsonContext : JsonSerializerContext;
