using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Flannel.Networking;
using Flannel.Subnets;

namespace Flannel.Configuration;

public sealed partial record NetworkConfig
{
    /// <summary>
    /// The backend types whose packages ship with Flannel.NET: <c>vxlan</c>, <c>host-gw</c>, <c>wireguard</c>,
    /// <c>alloc</c> and <c>extension</c>. The config may name any other type: backends are plugins, and whether one
    /// of that type is registered is the agent's check, not the parser's.
    /// </summary>
    public static IReadOnlyList<string> BuiltInBackendTypes { get; } = ["vxlan", "host-gw", "wireguard", "alloc", "extension"];

    /// <summary>
    /// Parses net-conf.json with Go <c>encoding/json</c> semantics (case-insensitive keys, unknown keys
    /// ignored). Applies no defaults beyond EnableIPv4=true and the backend type; see <see cref="Validate"/>.
    /// </summary>
    /// <exception cref="NetworkConfigException">The JSON is malformed or a field has the wrong type; the message names the field and value.</exception>
    public static NetworkConfig Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException ex)
        {
            throw new NetworkConfigException($"the network config is not valid JSON: {ex.Message}", null, null, ex);
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new NetworkConfigException(
                    $"the network config must be a JSON object, not {Describe(root)} ({Quote(
                        $"json: cannot unmarshal {GoKind(root)} into Go value of type subnet.Config")})",
                    null, root.GetRawText());
            }

            var config = new NetworkConfig();

            // Go matches keys case-insensitively and a later duplicate overwrites an earlier one; JSON null
            // leaves a field untouched. Unknown keys are ignored.
            foreach (JsonProperty property in root.EnumerateObject())
            {
                JsonElement value = property.Value;
                if (value.ValueKind == JsonValueKind.Null)
                {
                    continue;
                }

                config = property.Name.ToUpperInvariant() switch
                {
                    "NETWORK" => config with { Network = ReadNetwork(value, "Network", AddressFamily.InterNetwork) },
                    "IPV6NETWORK" => config with { IPv6Network = ReadNetwork(value, "IPv6Network", AddressFamily.InterNetworkV6) },
                    "ENABLEIPV4" => config with { EnableIPv4 = ReadBoolean(value, "EnableIPv4") },
                    "ENABLEIPV6" => config with { EnableIPv6 = ReadBoolean(value, "EnableIPv6") },
                    "ENABLENFTABLES" => config with { EnableNFTables = ReadBoolean(value, "EnableNFTables") },
                    "SUBNETLEN" => config with { SubnetLen = ReadPrefixLength(value, "SubnetLen") },
                    "IPV6SUBNETLEN" => config with { IPv6SubnetLen = ReadPrefixLength(value, "IPv6SubnetLen") },
                    "SUBNETMIN" => config with { SubnetMin = ReadAddress(value, "SubnetMin", AddressFamily.InterNetwork) },
                    "SUBNETMAX" => config with { SubnetMax = ReadAddress(value, "SubnetMax", AddressFamily.InterNetwork) },
                    "IPV6SUBNETMIN" => config with { IPv6SubnetMin = ReadAddress(value, "IPv6SubnetMin", AddressFamily.InterNetworkV6) },
                    "IPV6SUBNETMAX" => config with { IPv6SubnetMax = ReadAddress(value, "IPv6SubnetMax", AddressFamily.InterNetworkV6) },
                    "BACKEND" => ReadBackend(config, value),
                    _ => config,
                };
            }

            return config;
        }
    }

    /// <summary>
    /// Applies flannel's <c>CheckNetworkConfig</c>: computes SubnetLen, SubnetMin and SubnetMax (and the IPv6
    /// forms) and checks them, with flannel's exact error texts. Returns a new, complete configuration.
    /// </summary>
    /// <exception cref="NetworkConfigException">The configuration is not valid.</exception>
    public NetworkConfig Validate()
    {
        if (!EnableIPv4 && !EnableIPv6)
        {
            // flanneld's main refuses to start without any address family, with this text.
            throw new NetworkConfigException("none defined stack", "EnableIPv4", "false");
        }

        NetworkConfig result = this;
        if (EnableIPv4)
        {
            (int len, IPAddress min, IPAddress max) = CheckFamily(s_ipv4Rules, Network, SubnetLen, SubnetMin, SubnetMax);
            result = result with { SubnetLen = len, SubnetMin = min, SubnetMax = max };
        }

        if (EnableIPv6)
        {
            (int len, IPAddress min, IPAddress max) = CheckFamily(s_ipv6Rules, IPv6Network, IPv6SubnetLen, IPv6SubnetMin, IPv6SubnetMax);
            result = result with { IPv6SubnetLen = len, IPv6SubnetMin = min, IPv6SubnetMax = max };
        }

        return result;
    }

    /// <summary>Flannel's per-family constants and error texts for <c>CheckNetworkConfig</c>.</summary>
    private sealed record FamilyRules(
        AddressFamily Family,
        string NetworkField,
        string SubnetLenField,
        string MinField,
        string MaxField,
        int MaxSubnetLen,
        int MaxNetworkPrefix,
        int LargeNetworkPrefix,
        int LargeNetworkSubnetLen,
        string MissingNetwork,
        string SubnetLenTooLong,
        string NetworkTooSmall,
        string MinOutOfRange,
        string MaxOutOfRange);

    private static readonly FamilyRules s_ipv4Rules = new(
        AddressFamily.InterNetwork, "Network", "SubnetLen", "SubnetMin", "SubnetMax",
        MaxSubnetLen: 30, MaxNetworkPrefix: 28, LargeNetworkPrefix: 22, LargeNetworkSubnetLen: 24,
        MissingNetwork: "please define a correct Network parameter in the flannel config",
        SubnetLenTooLong: "SubnetLen must be less than /31",
        NetworkTooSmall: "network is too small. Minimum useful network prefix is /28",
        MinOutOfRange: "SubnetMin is not in the range of the Network",
        MaxOutOfRange: "SubnetMax is not in the range of the Network");

    private static readonly FamilyRules s_ipv6Rules = new(
        AddressFamily.InterNetworkV6, "IPv6Network", "IPv6SubnetLen", "IPv6SubnetMin", "IPv6SubnetMax",
        MaxSubnetLen: 126, MaxNetworkPrefix: 124, LargeNetworkPrefix: 62, LargeNetworkSubnetLen: 64,
        MissingNetwork: "please define a correct IPv6Network parameter in the flannel config",
        SubnetLenTooLong: "SubnetLen must be less than /127",
        NetworkTooSmall: "IPv6Network is too small. Minimum useful network prefix is /124",
        MinOutOfRange: "IPv6SubnetMin is not in the range of the IPv6Network",
        MaxOutOfRange: "IPv6SubnetMax is not in the range of the IPv6Network");

    private static (int SubnetLen, IPAddress Min, IPAddress Max) CheckFamily(
        FamilyRules rules, IPNetwork? network, int subnetLen, IPAddress? min, IPAddress? max)
    {
        // Go's zero value (0.0.0.0/0, ::/0) counts as "not set".
        if (network is not { } net || (net.PrefixLength == 0 && IPNetworkMath.ToUInt128(net.BaseAddress) == UInt128.Zero))
        {
            throw new NetworkConfigException(rules.MissingNetwork, rules.NetworkField, network?.ToString());
        }

        int prefix = net.PrefixLength;
        if (subnetLen > 0)
        {
            // Room for a tunnel and a bridge address on each host.
            if (subnetLen > rules.MaxSubnetLen)
            {
                throw new NetworkConfigException(rules.SubnetLenTooLong, rules.SubnetLenField, Invariant(subnetLen));
            }

            // The first subnet is never used, so the network must hold more than two.
            if (subnetLen < prefix + 2)
            {
                throw new NetworkConfigException(
                    "network must be able to accommodate at least four subnets", rules.SubnetLenField, Invariant(subnetLen));
            }
        }
        else if (prefix > rules.MaxNetworkPrefix)
        {
            throw new NetworkConfigException(rules.NetworkTooSmall, rules.NetworkField, net.ToString());
        }
        else
        {
            subnetLen = prefix <= rules.LargeNetworkPrefix ? rules.LargeNetworkSubnetLen : prefix + 2;
        }

        int bits = IPNetworkMath.BitLength(rules.Family);
        UInt128 addressMask = bits == 32 ? uint.MaxValue : UInt128.MaxValue;
        UInt128 subnetSize = UInt128.One << (bits - subnetLen);
        UInt128 networkBase = IPNetworkMath.ToUInt128(net.BaseAddress);

        IPAddress subnetMin;
        if (IsUnset(min))
        {
            // Skip the first subnet: its network address would equal the cluster network's.
            subnetMin = IPNetworkMath.FromUInt128((networkBase + subnetSize) & addressMask, rules.Family);
        }
        else if (!net.Contains(min))
        {
            throw new NetworkConfigException(rules.MinOutOfRange, rules.MinField, min.ToString());
        }
        else
        {
            subnetMin = min;
        }

        IPAddress subnetMax;
        if (IsUnset(max))
        {
            UInt128 next = networkBase + IPNetworkMath.Size(rules.Family, prefix);
            subnetMax = IPNetworkMath.FromUInt128((next - subnetSize) & addressMask, rules.Family);
        }
        else if (!net.Contains(max))
        {
            throw new NetworkConfigException(rules.MaxOutOfRange, rules.MaxField, max.ToString());
        }
        else
        {
            subnetMax = max;
        }

        if (!IPNetworkMath.Mask(subnetMin, subnetLen).Equals(subnetMin))
        {
            throw new NetworkConfigException(
                $"{rules.MinField} is not on a SubnetLen boundary: {subnetMin}", rules.MinField, subnetMin.ToString());
        }

        if (!IPNetworkMath.Mask(subnetMax, subnetLen).Equals(subnetMax))
        {
            throw new NetworkConfigException(
                $"{rules.MaxField} is not on a SubnetLen boundary: {subnetMax}", rules.MaxField, subnetMax.ToString());
        }

        return (subnetLen, subnetMin, subnetMax);
    }

    // Go keeps SubnetMin as a number where 0 means "not set"; an explicit 0.0.0.0 / :: is therefore a default too.
    private static bool IsUnset([System.Diagnostics.CodeAnalysis.NotNullWhen(false)] IPAddress? address) =>
        address is null || IPNetworkMath.ToUInt128(address) == UInt128.Zero;

    private static NetworkConfig ReadBackend(NetworkConfig config, JsonElement value)
    {
        string raw = value.GetRawText();
        if (value.ValueKind != JsonValueKind.Object)
        {
            // flannel decodes Backend into struct { Type string } and wraps the decoder's error.
            throw new NetworkConfigException(
                $"Backend: {raw} is not a JSON object ({Quote(BackendDecodingError(
                    $"json: cannot unmarshal {GoKind(value)} into Go value of type struct {{ Type string }}"))})",
                "Backend", raw);
        }

        string compact = GoJson.CompactToString(raw, escapeHtml: false);
        string? type = null;
        foreach (JsonProperty property in value.EnumerateObject())
        {
            if (!property.Name.Equals("Type", StringComparison.OrdinalIgnoreCase) || property.Value.ValueKind == JsonValueKind.Null)
            {
                continue;
            }

            if (property.Value.ValueKind != JsonValueKind.String)
            {
                string typeRaw = property.Value.GetRawText();
                throw new NetworkConfigException(
                    $"Backend.Type: {typeRaw} is not a string ({Quote(BackendDecodingError(
                        $"json: cannot unmarshal {GoKind(property.Value)} into Go struct field .Type of type string"))}); built-in backend types: {BuiltInList}",
                    "Backend.Type", typeRaw);
            }

            type = property.Value.GetString();
        }

        if (string.IsNullOrEmpty(type))
        {
            throw new NetworkConfigException(
                $"Backend: {compact} has no \"Type\"; built-in backend types: {BuiltInList}", "Backend.Type", compact);
        }

        string lowered = type.ToLowerInvariant();
        return config with { BackendType = lowered, Backend = compact };
    }

    private static string BackendDecodingError(string decoderError) => $"error decoding Backend property of config: {decoderError}";

    private static string BuiltInList => string.Join(", ", BuiltInBackendTypes);

    /// <summary>
    /// flannel's IP4Net / IP6Net: the raw JSON value with its quotes trimmed (so escapes are not decoded and a
    /// number is parsed as text) goes to Go's <c>net.ParseCIDR</c>, whose error is
    /// <c>invalid CIDR address: &lt;text&gt;</c>; a valid CIDR of the other family is
    /// <c>invalid IPv4 CIDR format</c> / <c>invalid IPv6 CIDR format</c>.
    /// </summary>
    private static IPNetwork ReadNetwork(JsonElement value, string field, AddressFamily family)
    {
        string expected = family == AddressFamily.InterNetwork ? "IPv4" : "IPv6";
        string raw = value.GetRawText();
        string text = TrimQuotes(raw);
        if (IPText.TryParseNetwork(text, out IPNetwork network))
        {
            if (network.BaseAddress.AddressFamily == family)
            {
                return network;
            }

            throw new NetworkConfigException(
                $"{field}: {raw} is not a valid {expected} CIDR ({Quote($"invalid {expected} CIDR format")})", field, raw);
        }

        throw new NetworkConfigException(
            $"{field}: {raw} is not a valid {expected} CIDR ({Quote($"invalid CIDR address: {text}")})", field, raw);
    }

    /// <summary>flannel's IP4 / IP6: the raw value with its quotes trimmed goes to Go's <c>net.ParseIP</c>.</summary>
    private static IPAddress ReadAddress(JsonElement value, string field, AddressFamily family)
    {
        string expected = family == AddressFamily.InterNetwork ? "IPv4" : "IPv6";
        string raw = value.GetRawText();
        string text = TrimQuotes(raw);
        if (IPText.TryParseAddress(text, family, out IPAddress? address))
        {
            return address;
        }

        string reason = IPText.TryParseAddress(text, out _) ? $"invalid {expected} address format" : "invalid IP address format";
        throw new NetworkConfigException(
            $"{field}: {raw} is not a valid {expected} address ({Quote(reason)})", field, raw);
    }

    private static bool ReadBoolean(JsonElement value, string field) => value.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw new NetworkConfigException(
            $"{field}: {value.GetRawText()} is not a boolean ({Quote(
                $"json: cannot unmarshal {GoKind(value)} into Go struct field Config.{field} of type bool")})",
            field, value.GetRawText()),
    };

    private static int ReadPrefixLength(JsonElement value, string field)
    {
        // Go's uint: a non-negative integer literal; SubnetLen range is checked by Validate with flannel's texts.
        if (value.ValueKind == JsonValueKind.Number && value.TryGetUInt64(out ulong length))
        {
            return (int)Math.Min(length, int.MaxValue);
        }

        string raw = value.GetRawText();
        string kind = value.ValueKind == JsonValueKind.Number ? $"number {raw}" : GoKind(value);
        throw new NetworkConfigException(
            $"{field}: {raw} is not a valid prefix length ({Quote(
                $"json: cannot unmarshal {kind} into Go struct field Config.{field} of type uint")})",
            field, raw);
    }

    /// <summary>Go's <c>bytes.Trim(j, "\"")</c>: every leading and trailing double quote.</summary>
    private static string TrimQuotes(string raw) => raw.Trim('"');

    private static string Quote(string flannelText) => $"\"{flannelText}\"";

    /// <summary>The kind of a JSON value as Go's decoder names it in its errors.</summary>
    private static string GoKind(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "bool",
        _ => "null",
    };

    private static string Describe(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => element.ValueKind.ToString(),
    };

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
