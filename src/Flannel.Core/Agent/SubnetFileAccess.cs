using System.Globalization;
using System.Net;
using System.Text;
using Flannel.Configuration;
using Flannel.Networking;
using Flannel.Subnets;

namespace Flannel.Agent;

/// <summary>What a previous run left in subnet.env: the networks and the node's subnets (network form).</summary>
internal sealed record PreviousSubnetFile(IPNetwork? Network, IPNetwork? Subnet, IPNetwork? IPv6Network, IPNetwork? IPv6Subnet);

/// <summary>
/// Reads and writes subnet.env for the agent (flannel's <c>WriteSubnetFile</c> / <c>ReadCIDRFromSubnetFile</c>):
/// variables in flannel's order, no quoting, written atomically (temp file, fsync, rename) with mode 0644.
/// </summary>
internal static class SubnetFileAccess
{
    public static PreviousSubnetFile? TryRead(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string raw in File.ReadAllLines(path))
        {
            string line = raw.Trim();
            int equals = line.IndexOf('=', StringComparison.Ordinal);
            if (line.Length == 0 || line[0] == '#' || equals <= 0)
            {
                continue;
            }

            values[line[..equals].Trim()] = line[(equals + 1)..].Trim().Trim('"');
        }

        return new PreviousSubnetFile(
            ParseSingle(values, "FLANNEL_NETWORK"),
            ParseSingle(values, "FLANNEL_SUBNET"),
            ParseSingle(values, "FLANNEL_IPV6_NETWORK"),
            ParseSingle(values, "FLANNEL_IPV6_SUBNET"));
    }

    public static string Format(NetworkConfig config, Lease lease, int mtu, bool ipMasq)
    {
        var text = new StringBuilder();
        if (config.EnableIPv4 && config.Network is IPNetwork network && lease.Subnet is IPNetwork subnet)
        {
            text.Append(CultureInfo.InvariantCulture, $"FLANNEL_NETWORK={network}\n");
            text.Append(CultureInfo.InvariantCulture, $"FLANNEL_SUBNET={Gateway(subnet)}/{subnet.PrefixLength}\n");
        }

        if (config.EnableIPv6 && config.IPv6Network is IPNetwork v6Network && lease.IPv6Subnet is IPNetwork v6Subnet)
        {
            text.Append(CultureInfo.InvariantCulture, $"FLANNEL_IPV6_NETWORK={v6Network}\n");
            text.Append(CultureInfo.InvariantCulture, $"FLANNEL_IPV6_SUBNET={Gateway(v6Subnet)}/{v6Subnet.PrefixLength}\n");
        }

        text.Append(CultureInfo.InvariantCulture, $"FLANNEL_MTU={mtu}\n");
        text.Append(CultureInfo.InvariantCulture, $"FLANNEL_IPMASQ={(ipMasq ? "true" : "false")}\n");
        return text.ToString();
    }

    public static async ValueTask WriteAsync(string path, string content, CancellationToken cancellationToken)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(path)) ?? "/";
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("subnet.env is written with Unix permissions");
        }

        if (!Directory.Exists(directory))
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }

        string temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            var options = new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
            };
            await using (var stream = new FileStream(temp, options))
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes(content), cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }

            // UnixCreateMode is filtered by the umask; flannel's file is 0644 regardless.
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    private static IPAddress Gateway(IPNetwork subnet) =>
        IPNetworkMath.FromUInt128(IPNetworkMath.ToUInt128(subnet.BaseAddress) + 1, subnet.BaseAddress.AddressFamily);

    private static IPNetwork? ParseSingle(Dictionary<string, string> values, string key)
    {
        if (!values.TryGetValue(key, out string? value) || value.Length == 0 || value.Contains(',', StringComparison.Ordinal))
        {
            return null;
        }

        int slash = value.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0 || !IPAddress.TryParse(value.AsSpan(0, slash), out IPAddress? address)
            || !int.TryParse(value.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int prefix)
            || prefix > IPNetworkMath.BitLength(address.AddressFamily))
        {
            return null;
        }

        return new IPNetwork(IPNetworkMath.Mask(address, prefix), prefix);
    }
}
