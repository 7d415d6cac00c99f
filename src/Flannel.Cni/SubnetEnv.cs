using System.Globalization;

namespace Flannel.Cni;

/// <summary>
/// The subnet.env flanneld writes, as flannel's CNI plugin reads it: the variables as <see cref="SubnetEnvText"/>
/// reads them (the same reader flanneld uses on restart); <c>FLANNEL_NETWORK</c>/<c>FLANNEL_IPV6_NETWORK</c> are
/// comma lists (de-duplicated), the subnets are reduced to their network, <c>FLANNEL_MTU</c> is an unsigned 32-bit
/// number, <c>FLANNEL_IPMASQ</c> is <c>true</c> only when it is exactly "true". Unknown variables are ignored; unlike
/// flanneld, any bad value fails the pod operation with flannel's text.
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
        Dictionary<string, string> values = SubnetEnvText.ReadVariables(content);
        if (values.TryGetValue(SubnetEnvText.Network, out string? network))
        {
            ParseNetworkList(network, env.Networks);
        }

        if (values.TryGetValue(SubnetEnvText.IPv6Network, out string? network6))
        {
            ParseNetworkList(network6, env.IPv6Networks);
        }

        if (values.TryGetValue(SubnetEnvText.Subnet, out string? subnet))
        {
            env.Subnet = Cidr.Parse(subnet).Network;
        }

        if (values.TryGetValue(SubnetEnvText.IPv6Subnet, out string? subnet6))
        {
            env.IPv6Subnet = Cidr.Parse(subnet6).Network;
        }

        if (values.TryGetValue(SubnetEnvText.Mtu, out string? mtu))
        {
            env.Mtu = uint.TryParse(mtu, NumberStyles.None, CultureInfo.InvariantCulture, out uint parsed)
                ? parsed
                : throw new FormatException($"strconv.ParseUint: parsing \"{mtu}\": {(mtu.Length > 0 && mtu.All(char.IsAsciiDigit) ? "value out of range" : "invalid syntax")}");
        }

        if (values.TryGetValue(SubnetEnvText.IPMasq, out string? ipMasq))
        {
            env.IPMasq = ipMasq == "true";
        }

        string missing = env.Missing();
        return missing.Length == 0 ? env : throw new FormatException($"{path} is missing {missing}");
    }

    private static void ParseNetworkList(string value, List<Cidr> networks)
    {
        foreach (string item in SubnetEnvText.SplitEntries(value))
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
            missing.Add(SubnetEnvText.Network);
            missing.Add(SubnetEnvText.IPv6Network);
        }

        if (Subnet is null && IPv6Subnet is null)
        {
            missing.Add(SubnetEnvText.Subnet);
            missing.Add(SubnetEnvText.IPv6Subnet);
        }

        if (Mtu is null)
        {
            missing.Add(SubnetEnvText.Mtu);
        }

        if (IPMasq is null)
        {
            missing.Add(SubnetEnvText.IPMasq);
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
