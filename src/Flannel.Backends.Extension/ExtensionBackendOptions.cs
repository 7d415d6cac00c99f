using System.ComponentModel.DataAnnotations;
namespace Flannel.Backends.Extension;

/// <summary>Host-side options of the extension backend (flannel has none of these: its commands run unbounded).</summary>
public sealed class ExtensionBackendOptions
{
    /// <summary>The longest one command may run before it is killed (with its children) and counted as failed. Default 60 s.</summary>
    [PositiveDuration]
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The shell that runs each command string, as <c>SHELL -c COMMAND</c>. flannel's commands are shell command
    /// strings from net-conf.json (pipes, <c>$SUBNET</c>), so a shell is what their semantics need. Default <c>/bin/sh</c>.
    /// </summary>
    [Required]
    public string Shell { get; set; } = "/bin/sh";

    /// <summary>
    /// The network namespace (a name under /var/run/netns or a path) the commands run in, for an agent bound to a
    /// namespace other than its process's (several nodes in one process). Null runs them in the process's own.
    /// </summary>
    public string? NetworkNamespace { get; set; }

    /// <summary>At most this many characters of a command's output are kept (for the log and for BackendData). Default 64 KiB.</summary>
    [Range(1, int.MaxValue)]
    public int MaxOutputCharacters { get; set; } = 64 * 1024;
}
