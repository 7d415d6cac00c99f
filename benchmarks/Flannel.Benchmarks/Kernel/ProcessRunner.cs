using System.Diagnostics;
using System.Text;

namespace Flannel.Benchmarks.Kernel;

/// <summary>
/// Runs an external tool (ip, bridge, the Go peer program) with an argument vector, never through a shell,
/// and returns its standard output. A non-zero exit becomes an exception carrying the tool's stderr.
/// </summary>
internal static class ProcessRunner
{
    public static async Task<string> RunAsync(string fileName, IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        using var process = Process.Start(startInfo)
            ?? throw new InvalidOperationException($"could not start {fileName}");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        Task<string> stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        string output = await stdout;
        string errors = await stderr;
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{Describe(fileName, startInfo.ArgumentList)} exited with {process.ExitCode}: {errors.Trim()}");
        }

        return output;
    }

    /// <summary>Counts the non-empty lines of a tool's output (one object per line for ip/bridge "show").</summary>
    public static int CountLines(string output)
    {
        int count = 0;
        foreach (ReadOnlySpan<char> line in output.AsSpan().EnumerateLines())
        {
            if (!line.IsWhiteSpace())
            {
                count++;
            }
        }

        return count;
    }

    public static string Describe(string fileName, IEnumerable<string> arguments)
    {
        var text = new StringBuilder(fileName);
        foreach (string argument in arguments)
        {
            text.Append(' ').Append(argument);
        }

        return text.ToString();
    }
}
