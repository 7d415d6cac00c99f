using System.Globalization;
using System.Net;
using System.Text;
using Flannel.Subnets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Flannel.Backends.Extension;

// Design note: flannel's extension backend hands the data plane to the operator's shell commands. Flannel.NET keeps
// its contract exactly (the four command strings, `sh -c`, the environment variables NETWORK, SUBNET and PUBLIC_IP,
// the remote lease's BackendData on stdin, the PreStartupCommand's trimmed output published as a JSON string in
// BackendData, and the error texts) and adds what flannel lacks: a timeout per run that kills the command's whole
// process tree, a cap on the output kept, and no re-run of SubnetAddCommand for a lease whose attributes did not
// change (flannel re-runs it on every renewal). A command that fails is logged with its output and the other
// leases are still handled.

/// <summary>flannel's <c>extension</c> backend: the data plane is programmed by commands from net-conf.json.</summary>
public sealed partial class ExtensionBackend : IBackend
{
    /// <summary>The backend type in net-conf.json and in lease attributes.</summary>
    public const string TypeName = "extension";

    private readonly ExtensionCommandRunner _runner;
    private readonly ILogger _logger;

    /// <summary>Creates the backend.</summary>
    /// <param name="options">Host-side options (shell, timeout, namespace).</param>
    /// <param name="logger">Logger; none when null.</param>
    /// <param name="runner">Runs the commands; one from <paramref name="options"/> when null.</param>
    public ExtensionBackend(IOptions<ExtensionBackendOptions> options, ILogger<ExtensionBackend>? logger = null, ExtensionCommandRunner? runner = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _runner = runner ?? new ExtensionCommandRunner(options.Value);
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <inheritdoc />
    public string BackendType => TypeName;

    /// <inheritdoc />
    /// <exception cref="Configuration.NetworkConfigException">The Backend object is malformed.</exception>
    /// <exception cref="InvalidOperationException">The PreStartupCommand failed (flannel: "failed to run command: …").</exception>
    public async ValueTask<INetwork> RegisterNetworkAsync(BackendContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ExtensionConfig config = ExtensionConfig.Parse(context.Config.Backend);
        string? backendData = null;
        if (config.PreStartupCommand is { } pre)
        {
            ExtensionCommandResult result = await _runner.RunAsync(pre, new Dictionary<string, string>(), string.Empty, cancellationToken).ConfigureAwait(false);
            ThrowIfFailed(result);
            LogRan(_logger, pre, result.Output);
            backendData = QuoteAsGoJson(result.Output);
        }
        else
        {
            LogNoPreStartup(_logger);
        }

        var attributes = new LeaseAttributes
        {
            PublicIP = context.ExternalInterface.PublicIP ?? IPAddress.Any,
            BackendType = TypeName,
            BackendData = backendData,
        };
        return new ExtensionNetwork(config, context, attributes, _runner, _logger);
    }

    /// <summary>flannel's error when a startup command fails.</summary>
    internal static void ThrowIfFailed(ExtensionCommandResult result)
    {
        if (!result.Succeeded)
        {
            throw new InvalidOperationException($"failed to run command: {result.Command} Err: {result.Error} Output: {result.Output}");
        }
    }

    /// <summary>The command output as Go's <c>json.Marshal</c> writes a string (what flannel stores as BackendData).</summary>
    internal static string QuoteAsGoJson(string value)
    {
        var text = new StringBuilder(value.Length + 2);
        GoJson.WriteString(text, value);
        return text.ToString();
    }

    [LoggerMessage(EventId = 4200, Level = LogLevel.Information, Message = "Ran command: {Command} Output: {Output}")]
    internal static partial void LogRan(ILogger logger, string command, string output);

    [LoggerMessage(EventId = 4201, Level = LogLevel.Information, Message = "No pre startup command configured - skipping")]
    private static partial void LogNoPreStartup(ILogger logger);
}
