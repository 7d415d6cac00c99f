using System.Text.Json;

namespace Flannel.Cni;

/// <summary>
/// The flannel plugin's network configuration from stdin (flannel-io/cni-plugin <c>NetConf</c>): the CNI
/// basics plus <c>subnetFile</c>, <c>dataDir</c>, <c>delegate</c>, <c>ipam</c> and <c>runtimeConfig</c>.
/// Field names match case-insensitively, as Go's <c>encoding/json</c> does for struct fields.
/// </summary>
internal sealed class NetConf
{
    public const string DefaultSubnetFile = "/run/flannel/subnet.env";
    public const string DefaultDataDir = "/var/lib/cni/flannel";

    public string CniVersion { get; private set; } = "";

    public string Name { get; private set; } = "";

    public string Type { get; private set; } = "";

    public string SubnetFile { get; private set; } = DefaultSubnetFile;

    public string DataDir { get; private set; } = DefaultDataDir;

    public Dictionary<string, object?>? Delegate { get; private set; }

    public Dictionary<string, object?>? Ipam { get; private set; }

    public Dictionary<string, object?>? RuntimeConfig { get; private set; }

    /// <summary>Parses the netconf; throws <see cref="CniException"/> (code 6 for undecodable JSON, as skel reports it).</summary>
    public static NetConf Parse(ReadOnlySpan<byte> stdin)
    {
        object? document;
        try
        {
            document = GoJson.Parse(stdin);
        }
        catch (JsonException e)
        {
            throw new CniException(CniErrorCode.DecodingFailure, $"error unmarshall network config: {e.Message}");
        }

        if (document is not Dictionary<string, object?> members)
        {
            throw new CniException(CniErrorCode.DecodingFailure,
                $"error unmarshall network config: json: cannot unmarshal {GoKind(document)} into Go value of type struct {{ Name string \"json:\\\"name\\\"\" }}");
        }

        var conf = new NetConf();
        foreach ((string key, object? value) in members)
        {
            // Go matches struct fields case-insensitively; null leaves a field unchanged.
            if (value is null)
            {
                continue;
            }

            switch (key.ToUpperInvariant())
            {
                case "CNIVERSION": conf.CniVersion = String(key, value); break;
                case "NAME": conf.Name = String(key, value); break;
                case "TYPE": conf.Type = String(key, value); break;
                case "SUBNETFILE": conf.SubnetFile = String(key, value); break;
                case "DATADIR": conf.DataDir = String(key, value); break;
                case "DELEGATE": conf.Delegate = Map(key, value); break;
                case "IPAM": conf.Ipam = Map(key, value); break;
                case "RUNTIMECONFIG": conf.RuntimeConfig = Map(key, value); break;
            }
        }

        return conf;
    }

    /// <summary>The version a runtime asked for; an absent cniVersion means 0.1.0 (CNI's ConfigDecoder).</summary>
    public string EffectiveCniVersion => CniVersion.Length == 0 ? "0.1.0" : CniVersion;

    private static string String(string key, object value) =>
        value as string ?? throw Mismatch(key, value, "string");

    private static Dictionary<string, object?> Map(string key, object value) =>
        value as Dictionary<string, object?> ?? throw Mismatch(key, value, "map[string]interface {}");

    private static CniException Mismatch(string key, object value, string goType) =>
        new(CniErrorCode.Internal,
            $"loadFlannelNetConf failed: failed to load netconf: json: cannot unmarshal {GoKind(value)} into Go struct field NetConf.{key} of type {goType}");

    internal static string GoKind(object? value) => value switch
    {
        string => "string",
        double => "number",
        bool => "bool",
        Dictionary<string, object?> => "object",
        List<object?> => "array",
        _ => "null",
    };
}
