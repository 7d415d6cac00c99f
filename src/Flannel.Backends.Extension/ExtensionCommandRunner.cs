using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Flannel.Backends.Extension;

/// <summary>How one command run ended.</summary>
/// <param name="Command">The command string from the config.</param>
/// <param name="Output">Its standard output and standard error, interleaved as they arrived, trimmed (flannel trims too).</param>
/// <param name="Error">Null on success; otherwise why it failed, in Go's words where there are some (<c>exit status 2</c>).</param>
public sealed record ExtensionCommandResult(string Command, string Output, string? Error)
{
    /// <summary>True when the command exited with status 0 within its timeout.</summary>
    public bool Succeeded => Error is null;
}

/// <summary>
/// Runs the extension backend's commands. Each command string comes from net-conf.json and is run exactly as
/// flannel runs it, by <c>sh</c> with stdout and stderr combined (an argument vector: the string is never pasted into another command),
/// with the process environment plus the variables flannel sets, and the standard input text followed by a
/// newline on stdin. Every run has a timeout, after which the command and its children are killed.
/// </summary>
public class ExtensionCommandRunner
{
    // flannel reads the command with Go's CombinedOutput: stdout and stderr are ONE pipe, so the output keeps the
    // order the command wrote it in. Process has no way to share a pipe between the two, so a constant script points
    // stderr at stdout and then evaluates the command, which arrives as an argument ($1) and is never pasted into
    // a script. After the shift the command sees no positional parameters, as under `sh -c COMMAND`.
    private const string CombinedOutputScript = "exec 2>&1\nflannel_extension_command=$1\nshift\neval \"$flannel_extension_command\"";

    private readonly ExtensionBackendOptions _options;

    /// <summary>Creates a runner with the host-side options (shell, timeout, namespace, output limit).</summary>
    public ExtensionCommandRunner(ExtensionBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(options.Shell);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.CommandTimeout, TimeSpan.Zero);
        _options = options;
    }

    /// <summary>Runs <paramref name="command"/> with the extra <paramref name="environment"/> and <paramref name="standardInput"/>.</summary>
    public virtual async Task<ExtensionCommandResult> RunAsync(string command, IReadOnlyDictionary<string, string> environment, string standardInput, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(command);
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(standardInput);

        ProcessStartInfo start = CreateStartInfo(command, environment);
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {start.FileName}");
        }
        catch (Win32Exception e)
        {
            return new ExtensionCommandResult(command, string.Empty, $"could not start {start.FileName}: {e.Message}");
        }

        using (process)
        {
            var output = new StringBuilder();
            Task stdout = PumpAsync(process.StandardOutput, output);
            Task stderr = PumpAsync(process.StandardError, output);
            try
            {
                // flannel writes the input and a newline, then closes stdin.
                await process.StandardInput.WriteAsync((standardInput + "\n").AsMemory(), cancellationToken).ConfigureAwait(false);
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // The command exited without reading its input; its status tells the rest.
            }

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.CommandTimeout);
            try
            {
                await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                await Task.WhenAll(stdout, stderr).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                return new ExtensionCommandResult(command, Trim(output), string.Create(CultureInfo.InvariantCulture, $"timed out after {_options.CommandTimeout.TotalSeconds:0.###}s and was killed"));
            }

            await Task.WhenAll(stdout, stderr).ConfigureAwait(false);
            string text = Trim(output);
            return process.ExitCode == 0
                ? new ExtensionCommandResult(command, text, null)
                : new ExtensionCommandResult(command, text, string.Create(CultureInfo.InvariantCulture, $"exit status {process.ExitCode}"));
        }
    }

    private ProcessStartInfo CreateStartInfo(string command, IReadOnlyDictionary<string, string> environment)
    {
        string[] shell = [_options.Shell, "-c", CombinedOutputScript, _options.Shell, command];
        string[] argv = _options.NetworkNamespace is { Length: > 0 } ns
            ? ["nsenter", "--net=" + (ns.Contains('/', StringComparison.Ordinal) ? ns : "/var/run/netns/" + ns), "--", .. shell]
            : shell;
        var start = new ProcessStartInfo(argv[0])
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in argv.AsSpan(1))
        {
            start.ArgumentList.Add(argument);
        }

        foreach ((string key, string value) in environment)
        {
            start.Environment[key] = value; // as in Go, a later value of a duplicate key wins over the inherited one
        }

        return start;
    }

    private async Task PumpAsync(StreamReader reader, StringBuilder into)
    {
        char[] buffer = new char[4096];
        int read;
        while ((read = await reader.ReadAsync(buffer).ConfigureAwait(false)) > 0)
        {
            lock (into)
            {
                int room = _options.MaxOutputCharacters - into.Length;
                if (room > 0)
                {
                    into.Append(buffer, 0, Math.Min(read, room));
                }
            }
        }
    }

    private static string Trim(StringBuilder output)
    {
        lock (output)
        {
            return output.ToString().Trim();
        }
    }
}
