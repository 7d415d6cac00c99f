using System.Globalization;
using System.Text.Json;
using Flannel.Configuration;
using Flannel.Netlink.WireGuard;

namespace Flannel.Backends.WireGuard;

/// <summary>How the WireGuard devices carry the two address families (flannel's <c>Mode</c>).</summary>
public enum WireGuardMode
{
    /// <summary><c>separate</c> (default): <c>flannel-wg</c> for IPv4 over the IPv4 underlay, <c>flannel-wg-v6</c> for IPv6 over the IPv6 underlay.</summary>
    Separate,

    /// <summary><c>auto</c>: one device for both families; each peer's endpoint family is chosen per peer.</summary>
    Auto,

    /// <summary><c>ipv4</c>: one device for both families, peers reached at their IPv4 address.</summary>
    IPv4,

    /// <summary><c>ipv6</c>: one device for both families, peers reached at their IPv6 address.</summary>
    IPv6,
}

/// <summary>
/// The wireguard <c>Backend</c> object of net-conf.json, decoded as flannel's Go <c>encoding/json</c> does (keys
/// case-insensitive, unknown keys ignored), with flannel's defaults: <c>ListenPort</c> 51820, <c>ListenPortV6</c>
/// 51821, <c>MTU</c> the external interface's, no <c>PSK</c>, <c>PersistentKeepaliveInterval</c> 0 (seconds),
/// <c>Mode</c> <c>separate</c>.
/// </summary>
/// <param name="ListenPort">UDP port of <c>flannel-wg</c>.</param>
/// <param name="ListenPortV6">UDP port of <c>flannel-wg-v6</c> (separate mode).</param>
/// <param name="Mtu">The underlay MTU the device MTU is derived from; 0 = the external interface's.</param>
/// <param name="PresharedKey">The cluster-wide preshared key, if any.</param>
/// <param name="PersistentKeepaliveInterval">Seconds between keepalives; 0 disables them.</param>
/// <param name="Mode">How the families map to devices.</param>
public sealed record WireGuardConfig(ushort ListenPort, ushort ListenPortV6, int Mtu, WireGuardKey? PresharedKey, ushort PersistentKeepaliveInterval, WireGuardMode Mode)
{
    /// <summary>flannel's defaults.</summary>
    public static WireGuardConfig Default { get; } = new(51820, 51821, 0, null, 0, WireGuardMode.Separate);

    /// <summary>Decodes the raw <c>Backend</c> JSON; null or empty means all defaults.</summary>
    /// <exception cref="NetworkConfigException">A field is malformed, with flannel's text where flannel has one.</exception>
    public static WireGuardConfig Parse(string? backendJson)
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
            throw new NetworkConfigException($"error decoding backend config: {ex.Message}", "Backend", backendJson, ex);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new NetworkConfigException($"error decoding backend config: Backend must be a JSON object, got {backendJson}", "Backend", backendJson);
            }

            WireGuardConfig config = Default;
            string? mode = null;
            foreach (JsonProperty property in document.RootElement.EnumerateObject())
            {
                switch (property.Name.ToUpperInvariant())
                {
                    case "LISTENPORT":
                        config = config with { ListenPort = ReadPort(property, "ListenPort", config.ListenPort) };
                        break;
                    case "LISTENPORTV6":
                        config = config with { ListenPortV6 = ReadPort(property, "ListenPortV6", config.ListenPortV6) };
                        break;
                    case "MTU":
                        long mtu = ReadInteger(property, "MTU", config.Mtu);
                        if (mtu is < 0 or > 65535)
                        {
                            throw Invalid("MTU", property, "must be between 0 and 65535 (0 = the interface's MTU)");
                        }

                        config = config with { Mtu = (int)mtu };
                        break;
                    case "PSK":
                        config = config with { PresharedKey = ReadPsk(property) };
                        break;
                    case "PERSISTENTKEEPALIVEINTERVAL":
                        long seconds = ReadInteger(property, "PersistentKeepaliveInterval", config.PersistentKeepaliveInterval);
                        if (seconds is < 0 or > ushort.MaxValue)
                        {
                            throw Invalid("PersistentKeepaliveInterval", property, "must be between 0 and 65535 seconds (0 = off)");
                        }

                        config = config with { PersistentKeepaliveInterval = (ushort)seconds };
                        break;
                    case "MODE":
                        mode = property.Value.ValueKind switch
                        {
                            JsonValueKind.String => property.Value.GetString(),
                            JsonValueKind.Null => mode,
                            _ => throw Invalid("Mode", property, "must be a string: separate, auto, ipv4 or ipv6"),
                        };
                        break;
                    default:
                        break; // Type, and anything flannel ignores
                }
            }

            return mode is null ? config : config with { Mode = ParseMode(mode) };
        }
    }

    /// <summary>flannel compares the mode exactly (Go string constants), so <c>Separate</c> is not <c>separate</c>.</summary>
    private static WireGuardMode ParseMode(string mode) => mode switch
    {
        "separate" => WireGuardMode.Separate,
        "auto" => WireGuardMode.Auto,
        "ipv4" => WireGuardMode.IPv4,
        "ipv6" => WireGuardMode.IPv6,
        _ => throw new NetworkConfigException($"No valid Mode configured: \"{mode}\" is not one of separate, auto, ipv4, ipv6", "Backend.Mode", mode),
    };

    private static WireGuardKey? ReadPsk(JsonProperty property)
    {
        if (property.Value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (property.Value.ValueKind != JsonValueKind.String)
        {
            throw Invalid("PSK", property, "must be a string (a key as `wg genpsk` prints it)");
        }

        string text = property.Value.GetString()!;
        if (text.Length == 0)
        {
            return null; // flannel: psk != "" is the only test
        }

        // Never echo the value: it is a secret.
        return WireGuardKey.TryParse(text, out WireGuardKey key)
            ? key
            : throw new NetworkConfigException(
                $"could not parse psk: Backend.PSK is not a WireGuard key ({WireGuardKey.Base64Length} characters of base64, as `wg genpsk` prints; got {text.Length} characters)",
                "Backend.PSK",
                "(secret)");
    }

    private static ushort ReadPort(JsonProperty property, string field, ushort current)
    {
        long port = ReadInteger(property, field, current);
        return port is < 0 or > ushort.MaxValue
            ? throw Invalid(field, property, "must be between 0 and 65535")
            : (ushort)port;
    }

    private static long ReadInteger(JsonProperty property, string field, long current)
    {
        if (property.Value.ValueKind == JsonValueKind.Null)
        {
            return current; // Go leaves the field untouched on null
        }

        if (property.Value.ValueKind != JsonValueKind.Number || !property.Value.TryGetInt64(out long value))
        {
            throw Invalid(field, property, "must be an integer");
        }

        return value;
    }

    private static NetworkConfigException Invalid(string field, JsonProperty property, string rule) =>
        new(
            string.Create(CultureInfo.InvariantCulture, $"error decoding backend config: {field} {property.Value.GetRawText()} {rule}"),
            $"Backend.{field}",
            property.Value.GetRawText());
}
