using System.Globalization;

namespace Flannel.Cni;

/// <summary>
/// The subnet.env flanneld writes, as flannel's CNI plugin reads it: <c>KEY=VALUE</c> lines;
/// <c>FLANNEL_NETWORK</c>/<c>FLANNEL_IPV6_NETWORK</c> are comma lists (de-duplicated), the subnets are
/// reduced to their network, <c>FLANNEL_MTU</c> is an unsigned 32-bit number, <c>FLANNEL_IPMASQ</c> is
/// <c>true</c> only when it is exactly "true". Unknown lines are ignored.
/// </summary>
internal sealed class SubnetEnv
{
    public List<Cidr> Networks { get; } = [];

    public List<Cidr> IPv6Networks { get; } = [];

    public Cidr? Subnet { get; private set; }

    public Cidr? IPv6Subnet { get; private set; }

    public uint? Mtu { get; private set; }

    public bool? IPMasq { get; private set; }

    /// <summary>Reads and validates <paramref name="path"/>; every failure is a <see cref="CniException"/> with flannel's text.</summary>
    public static SubnetEnv Load(string path)
    {
        string content;
        try
        {
            content = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw LoadFailure($"open {path}: {GoErrno.Describe(e)}");
        }

        try
        {
            return Parse(path, content);
        }
        catch (FormatException e)
        {
            throw LoadFailure(e.Message);
        }
    }

    private static CniException LoadFailure(string reason) =>
        new(CniErrorCode.Internal, $"failed to load flannel 'subnet.env' file: {reason}. Check the flannel pod log for this node.");

    /// <summary>Parses the content; throws <see cref="FormatException"/> with flannel's text.</summary>
    public static SubnetEnv Parse(string path, string content)
    {
        var env = new SubnetEnv();
        foreach (string rawLine in content.Split('\n'))
        {
            string line = rawLine.EndsWith('\r') ? rawLine[..^1] : rawLine;
            int equals = line.IndexOf('=', StringComparison.Ordinal);
            string key = equals < 0 ? line : line[..equals];
            string value = equals < 0 ? "" : line[(equals + 1)..];
            switch (key)
            {
                case "FLANNEL_NETWORK":
                    ParseNetworkList(value, env.Networks);
                    break;
                case "FLANNEL_IPV6_NETWORK":
                    ParseNetworkList(value, env.IPv6Networks);
                    break;
                case "FLANNEL_SUBNET":
                    env.Subnet = Cidr.Parse(value).Network;
                    break;
                case "FLANNEL_IPV6_SUBNET":
                    env.IPv6Subnet = Cidr.Parse(value).Network;
                    break;
                case "FLANNEL_MTU":
                    env.Mtu = uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out uint mtu)
                        ? mtu
                        : throw new FormatException($"strconv.ParseUint: parsing \"{value}\": {(value.Length > 0 && value.All(char.IsAsciiDigit) ? "value out of range" : "invalid syntax")}");
                    break;
                case "FLANNEL_IPMASQ":
                    env.IPMasq = value == "true";
                    break;
            }
        }

        string missing = env.Missing();
        return missing.Length == 0 ? env : throw new FormatException($"{path} is missing {missing}");
    }

    private static void ParseNetworkList(string value, List<Cidr> networks)
    {
        // A later line replaces an earlier one, as in flannel.
        networks.Clear();
        foreach (string item in value.Split(','))
        {
            Cidr network = Cidr.Parse(item).Network;
            if (!networks.Contains(network))
            {
                networks.Add(network);
            }
        }
    }

    private string Missing()
    {
        var missing = new List<string>();
        if (Networks.Count == 0 && IPv6Networks.Count == 0)
        {
            missing.Add("FLANNEL_NETWORK");
            missing.Add("FLANNEL_IPV6_NETWORK");
        }

        if (Subnet is null && IPv6Subnet is null)
        {
            missing.Add("FLANNEL_SUBNET");
            missing.Add("FLANNEL_IPV6_SUBNET");
        }

        if (Mtu is null)
        {
            missing.Add("FLANNEL_MTU");
        }

        if (IPMasq is null)
        {
            missing.Add("FLANNEL_IPMASQ");
        }

        return string.Join(", ", missing);
    }
}

/// <summary>Describes I/O failures with the errno text Go prints (the words runtimes and users grep for).</summary>
internal static class GoErrno
{
    public static string Describe(Exception e) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException => "no such file or directory",
        UnauthorizedAccessException => "permission denied",
        _ => e.Message,
    };
}
