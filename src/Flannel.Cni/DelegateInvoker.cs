using System.Diagnostics;
using System.Text;

namespace Flannel.Cni;

/// <summary>What a delegate plugin printed and how it exited.</summary>
internal sealed record PluginOutput(int ExitCode, byte[] Stdout);

/// <summary>Runs a plugin executable; the seam unit tests replace.</summary>
internal interface IPluginRunner
{
    /// <summary>Runs <paramref name="path"/> (no shell, no arguments) with <paramref name="environment"/> and <paramref name="stdin"/>.</summary>
    PluginOutput Run(string path, IReadOnlyDictionary<string, string> environment, byte[] stdin);
}

/// <summary>Runs a plugin as a child process; its stderr goes straight to ours (the runtime's log).</summary>
internal sealed class ProcessPluginRunner : IPluginRunner
{
    public PluginOutput Run(string path, IReadOnlyDictionary<string, string> environment, byte[] stdin)
    {
        var start = new ProcessStartInfo(path)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = false,
        };
        start.Environment.Clear();
        foreach ((string key, string value) in environment)
        {
            start.Environment[key] = value;
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new CniException(CniErrorCode.Internal, $"failed to start {path}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new CniException(CniErrorCode.Internal, $"fork/exec {path}: {e.Message}");
        }

        using Process running = process;
        // Plain threads, no thread pool: the plugin is a short-lived process and spinning up the pool (and
        // waking it for each completion) cost several milliseconds per pod operation. The netconf is written
        // from its own thread so a delegate that prints before it has read all of its input cannot deadlock us.
        var writer = new Thread(() =>
        {
            try
            {
                process.StandardInput.BaseStream.Write(stdin);
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // The plugin exited without reading all of its input; its exit status tells what happened.
            }
        });
        writer.Start();
        using var stdout = new MemoryStream();
        process.StandardOutput.BaseStream.CopyTo(stdout);
        writer.Join();
        process.WaitForExit();
        return new PluginOutput(process.ExitCode, stdout.ToArray());
    }
}

/// <summary>
/// Finds and runs a delegate plugin the way CNI's <c>invoke.DelegateAdd</c>/<c>DelegateDel</c> do: the first
/// regular file named <c>type</c> in the directories of <c>CNI_PATH</c>, run with our environment where
/// <c>CNI_COMMAND</c> is replaced, the netconf on stdin; a failing plugin's error JSON is passed through unchanged.
/// </summary>
internal sealed class DelegateInvoker(IPluginRunner runner, IReadOnlyDictionary<string, string> environment)
{
    public byte[] Invoke(string command, string pluginType, byte[] netconf)
    {
        string path = FindInPath(pluginType);
        var childEnvironment = new Dictionary<string, string>(environment, StringComparer.Ordinal) { ["CNI_COMMAND"] = command };
        PluginOutput output = runner.Run(path, childEnvironment, netconf);
        if (output.ExitCode == 0)
        {
            return output.Stdout;
        }

        throw PluginError(output);
    }

    private string FindInPath(string pluginType)
    {
        // The type comes from the netconf: it names a file in CNI_PATH, never a path of its own.
        if (pluginType.Length == 0 || pluginType is "." or ".." || pluginType.Contains('/', StringComparison.Ordinal) || pluginType.Contains('\0', StringComparison.Ordinal))
        {
            throw new CniException(CniErrorCode.InvalidNetworkConfig, $"invalid delegate plugin type {pluginType}");
        }

        string[] paths = environment.TryGetValue("CNI_PATH", out string? cniPath)
            ? cniPath.Split(':', StringSplitOptions.RemoveEmptyEntries)
            : [];
        if (paths.Length == 0)
        {
            throw new CniException(CniErrorCode.Internal, "failed to delegate add: no paths provided");
        }

        foreach (string directory in paths)
        {
            string candidate = Path.Combine(directory, pluginType);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new CniException(CniErrorCode.Internal, $"failed to find plugin \"{pluginType}\" in path [{string.Join(' ', paths)}]");
    }

    /// <summary>CNI's <c>pluginErr</c>: the plugin's own error document when it printed one.</summary>
    private static CniException PluginError(PluginOutput output)
    {
        if (output.Stdout.Length == 0)
        {
            return new CniException(CniErrorCode.Internal, $"netplugin failed with no error message: exit status {output.ExitCode}");
        }

        try
        {
            if (GoJson.Parse(output.Stdout) is Dictionary<string, object?> error)
            {
                uint code = error.TryGetValue("code", out object? c) && c is double d && d >= 0 && d <= uint.MaxValue ? (uint)d : 0;
                string message = error.TryGetValue("msg", out object? m) && m is string s ? s : "";
                string details = error.TryGetValue("details", out object? t) && t is string u ? u : "";
                return new CniException(code, message, details);
            }
        }
        catch (System.Text.Json.JsonException)
        {
        }

        return new CniException(CniErrorCode.Internal,
            $"netplugin failed but error parsing its diagnostic message \"{Encoding.UTF8.GetString(output.Stdout)}\"");
    }
}
