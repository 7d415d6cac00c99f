using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace Flannel.Agent;

/// <summary>Checks <see cref="FlannelAgentOptions"/> at startup; each failure names the flag and the bad value.</summary>
public sealed class FlannelAgentOptionsValidator : IValidateOptions<FlannelAgentOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, FlannelAgentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.Name))
        {
            failures.Add("Name: the agent name must not be empty");
        }

        if (string.IsNullOrWhiteSpace(options.SubnetFile))
        {
            failures.Add("--subnet-file: must not be empty");
        }

        if (options.SubnetLeaseRenewMarginMinutes is < 1 or > 1439)
        {
            failures.Add($"--subnet-lease-renew-margin={options.SubnetLeaseRenewMarginMinutes}: Invalid subnet-lease-renew-margin option, out of acceptable range (1..1439 minutes)");
        }

        if (options.IptablesResync <= TimeSpan.Zero)
        {
            failures.Add($"--iptables-resync={options.IptablesResync.TotalSeconds}: must be a positive number of seconds");
        }

        if (options.StoreRetryInitialDelay <= TimeSpan.Zero || options.StoreRetryMaxDelay < options.StoreRetryInitialDelay)
        {
            failures.Add($"StoreRetryInitialDelay={options.StoreRetryInitialDelay}, StoreRetryMaxDelay={options.StoreRetryMaxDelay}: need 0 < initial <= max");
        }

        CheckProbes(failures, options.Probes);
        CheckAddress(failures, "--public-ip", options.PublicIP, AddressFamily.InterNetwork);
        CheckAddress(failures, "--public-ipv6", options.PublicIPv6, AddressFamily.InterNetworkV6);
        CheckAddress(failures, "--iface-can-reach", options.IfaceCanReach, null);
        foreach (string iface in options.Iface)
        {
            if (string.IsNullOrWhiteSpace(iface))
            {
                failures.Add("--iface: an empty value was given");
            }
        }

        foreach (string pattern in options.IfaceRegex)
        {
            try
            {
                _ = new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            }
            catch (ArgumentException ex)
            {
                failures.Add($"--iface-regex='{pattern}': could not compile the regex: {ex.Message}");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void CheckProbes(List<string> failures, Flannel.Agent.Probing.FabricProbeOptions? probes)
    {
        if (probes is null)
        {
            failures.Add("Probes: must not be null (set Probes.Enabled = false to turn probing off)");
            return;
        }

        if (!probes.Enabled)
        {
            return;
        }

        if (probes.Interval <= TimeSpan.Zero)
        {
            failures.Add($"--probe-interval={probes.Interval}: must be positive (0 turns probing off)");
        }

        if (probes.Timeout <= TimeSpan.Zero || probes.Timeout >= probes.Interval)
        {
            failures.Add($"--probe-timeout={probes.Timeout}: must be positive and shorter than --probe-interval ({probes.Interval})");
        }

        if (probes.FailureThreshold < 1 || probes.RecoveryThreshold < 1 || probes.FlapThreshold < 2 || probes.Window < 1)
        {
            failures.Add($"Probes: FailureThreshold={probes.FailureThreshold}, RecoveryThreshold={probes.RecoveryThreshold} and Window={probes.Window} must be at least 1, FlapThreshold={probes.FlapThreshold} at least 2");
        }

        if (probes.MaxPeersPerSecond <= 0)
        {
            failures.Add($"Probes: MaxPeersPerSecond={probes.MaxPeersPerSecond} must be positive");
        }
    }

    private static void CheckAddress(List<string> failures, string flag, string? value, AddressFamily? family)
    {
        if (string.IsNullOrEmpty(value))
        {
            return;
        }

        if (!IPAddress.TryParse(value, out IPAddress? address))
        {
            failures.Add($"{flag}={value}: not an IP address");
        }
        else if (family is not null && address.AddressFamily != family)
        {
            failures.Add($"{flag}={value}: must be an {(family == AddressFamily.InterNetwork ? "IPv4" : "IPv6")} address");
        }
    }
}
