using System.Diagnostics;

namespace Flannel.Agent.Traffic;

/// <summary>What a finished command printed and how it exited.</summary>
/// <param name="ExitCode">The process exit status; 0 for success.</param>
/// <param name="StandardOutput">Everything the command wrote to stdout.</param>
/// <param name="StandardError">Everything the command wrote to stderr.</param>
public sealed record CommandResult(int ExitCode, string StandardOutput, string StandardError)
{
    /// <summary>True when the command exited with status 0.</summary>
    public bool Succeeded => ExitCode == 0;
}

/// <summary>
/// Runs external programs (iptables-restore, iptables-save, nft) with an argument array and optional stdin —
/// never through a shell. The seam that binds a traffic manager to a network namespace and that tests replace.
/// </summary>
public interface ICommandRunner
{
    /// <summary>Runs <paramref name="fileName"/> with <paramref name="arguments"/>, writing <paramref name="standardInput"/> to its stdin.</summary>
    /// <exception cref="System.ComponentModel.Win32Exception">The program does not exist or cannot be started.</exception>
    Task<CommandResult> RunAsync(string fileName, IReadOnlyList<string> arguments, string? standardInput, CancellationToken cancellationToken);
}

/// <summary>Runs commands as child processes of this process (in its network namespace).</summary>
public sealed class ProcessCommandRunner : ICommandRunner
{
    /// <summary>The shared instance.</summary>
    public static ProcessCommandRunner Instance { get; } = new();

    /// <inheritdoc />
    public async Task<CommandResult> RunAsync(string fileName, IReadOnlyList<string> arguments, string? standardInput, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(fileName);
        ArgumentNullException.ThrowIfNull(arguments);
        var start = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // Rule text must not depend on the caller's locale.
        start.Environment["LC_ALL"] = "C";

        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {fileName}");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        Task<string> stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            if (standardInput is not null)
            {
                await process.StandardInput.WriteAsync(standardInput.AsMemory(), cancellationToken).ConfigureAwait(false);
            }

            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The program exited before reading its input; its exit status and stderr explain why.
        }

        try
        {
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return new CommandResult(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }
}

/// <summary>
/// Runs every command inside a named network namespace, as <c>ip netns exec NAME program args…</c> (an argument
/// array, no shell). This is how an agent bound to a node namespace installs that node's rules.
/// </summary>
public sealed class NetworkNamespaceCommandRunner : ICommandRunner
{
    private readonly ICommandRunner _inner;

    /// <summary>Creates a runner for namespace <paramref name="namespaceName"/> (as listed by <c>ip netns list</c>).</summary>
    public NetworkNamespaceCommandRunner(string namespaceName, ICommandRunner? inner = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(namespaceName);
        if (namespaceName.Contains('/', StringComparison.Ordinal) || namespaceName is "." or "..")
        {
            throw new ArgumentException($"invalid network namespace name '{namespaceName}'", nameof(namespaceName));
        }

        NamespaceName = namespaceName;
        _inner = inner ?? ProcessCommandRunner.Instance;
    }

    /// <summary>The namespace commands run in.</summary>
    public string NamespaceName { get; }

    /// <inheritdoc />
    public Task<CommandResult> RunAsync(string fileName, IReadOnlyList<string> arguments, string? standardInput, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        string[] wrapped = ["netns", "exec", NamespaceName, fileName, .. arguments];
        return _inner.RunAsync("ip", wrapped, standardInput, cancellationToken);
    }
}
