using System.Globalization;
using System.Text.Json;
using Flannel.Configuration;

namespace Flannel.Backends.Vxlan;

/// <summary>
/// The vxlan <c>Backend</c> object of net-conf.json, decoded as flannel's Go <c>encoding/json</c> does: keys
/// match case-insensitively, unknown keys are ignored, absent keys keep their defaults.
/// </summary>
/// <param name="Vni">VXLAN network identifier; default 1.</param>
/// <param name="Port">UDP port; 0 keeps the kernel default (8472).</param>
/// <param name="Mtu">Underlay MTU override; 0 uses the external interface's MTU.</param>
/// <param name="Gbp">Group Based Policy extension.</param>
/// <param name="Learning">Learn remote MACs (flannel's default is off, "nolearning").</param>
/// <param name="DirectRouting">Route directly, without encapsulation, to peers on the same underlay subnet.</param>
internal sealed record VxlanConfig(uint Vni, ushort Port, int Mtu, bool Gbp, bool Learning, bool DirectRouting)
{
    /// <summary>The largest VNI (24 bits).</summary>
    public const uint MaxVni = 0xFF_FFFF;

    public static VxlanConfig Default { get; } = new(1, 0, 0, false, false, false);

    /// <summary>Decodes the raw <c>Backend</c> JSON (null or empty means all defaults).</summary>
    /// <exception cref="NetworkConfigException">A field has the wrong type or an out-of-range value.</exception>
    public static VxlanConfig Parse(string? backendJson)
    {
        if (string.IsNullOrWhiteSpace(backendJson))
        {
            return Default;
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(backendJson);
        }
        catch (JsonException ex)
        {
            throw new NetworkConfigException($"error decoding VXLAN backend config: {ex.Message}", "Backend", backendJson, ex);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new NetworkConfigException($"error decoding VXLAN backend config: Backend must be a JSON object, got {backendJson}", "Backend", backendJson);
            }

            VxlanConfig config = Default;
            foreach (JsonProperty property in document.RootElement.EnumerateObject())
            {
                // Go matches an exact name first, then a case-insensitive one; with distinct field names that is
                // the same as a case-insensitive match.
                switch (property.Name.ToUpperInvariant())
                {
                    case "VNI":
                        long vni = ReadInteger(property, "VNI");
                        if (vni is < 0 or > MaxVni)
                        {
                            throw OutOfRange("VNI", property, $"must be between 0 and {MaxVni}");
                        }

                        config = config with { Vni = (uint)vni };
                        break;
                    case "PORT":
                        long port = ReadInteger(property, "Port");
                        if (port is < 0 or > ushort.MaxValue)
                        {
                            throw OutOfRange("Port", property, "must be between 0 and 65535 (0 = kernel default 8472)");
                        }

                        config = config with { Port = (ushort)port };
                        break;
                    case "MTU":
                        long mtu = ReadInteger(property, "MTU");
                        if (mtu is < 0 or > 65535)
                        {
                            throw OutOfRange("MTU", property, "must be between 0 and 65535 (0 = the interface's MTU)");
                        }

                        config = config with { Mtu = (int)mtu };
                        break;
                    case "GBP":
                        config = config with { Gbp = ReadBoolean(property, "GBP") };
                        break;
                    case "LEARNING":
                        config = config with { Learning = ReadBoolean(property, "Learning") };
                        break;
                    case "DIRECTROUTING":
                        config = config with { DirectRouting = ReadBoolean(property, "DirectRouting") };
                        break;
                    default:
                        break; // Type, and anything flannel ignores
                }
            }

            return config;
        }
    }

    private static long ReadInteger(JsonProperty property, string field)
    {
        if (property.Value.ValueKind == JsonValueKind.Null)
        {
            return field == "VNI" ? Default.Vni : 0; // Go leaves the field untouched on null
        }

        if (property.Value.ValueKind != JsonValueKind.Number || !property.Value.TryGetInt64(out long value))
        {
            throw new NetworkConfigException(
                $"error decoding VXLAN backend config: {field} must be an integer, got {property.Value.GetRawText()}",
                $"Backend.{field}",
                property.Value.GetRawText());
        }

        return value;
    }

    private static bool ReadBoolean(JsonProperty property, string field) => property.Value.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False or JsonValueKind.Null => false,
        _ => throw new NetworkConfigException(
            $"error decoding VXLAN backend config: {field} must be true or false, got {property.Value.GetRawText()}",
            $"Backend.{field}",
            property.Value.GetRawText()),
    };

    private static NetworkConfigException OutOfRange(string field, JsonProperty property, string rule) =>
        new(
            string.Create(CultureInfo.InvariantCulture, $"error decoding VXLAN backend config: {field} {property.Value.GetRawText()} {rule}"),
            $"Backend.{field}",
            property.Value.GetRawText());
}
