using System.Globalization;
using System.Text.Json;
using Flannel.Netlink.WireGuard;

namespace Flannel.Backends.WireGuard;

/// <summary>
/// A wireguard lease's <c>BackendData</c> / <c>BackendV6Data</c>: <c>{"PublicKey":"&lt;base64&gt;","Port":51820}</c>,
/// byte for byte as flannel's <c>json.Marshal(&amp;wireguardLeaseAttrs{…})</c> writes it (Go's field order; base64
/// has no character Go escapes). Older flannel versions wrote no <c>Port</c>; a peer's missing or zero port means
/// "the same port as ours", as flannel reads it.
/// </summary>
/// <param name="PublicKey">The node's WireGuard public key.</param>
/// <param name="Port">The UDP port peers send to; 0 when the writer did not say.</param>
public sealed record WireGuardLeaseData(WireGuardKey PublicKey, ushort Port)
{
    /// <summary>The compact JSON flannel writes.</summary>
    public string ToJson() => string.Create(CultureInfo.InvariantCulture, $"{{\"PublicKey\":\"{PublicKey}\",\"Port\":{Port}}}");

    /// <summary>Reads a peer's data; false with a reason when it is not a wireguard lease's data.</summary>
    public static bool TryParse(string? json, out WireGuardLeaseData? data, out string? error)
    {
        data = null;
        error = null;
        if (string.IsNullOrEmpty(json))
        {
            error = "the lease has no backend data (no public key)";
            return false;
        }

        try
        {
            using JsonDocument document = JsonDocument.Parse(json);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                error = $"backend data {Shorten(json)} is not a JSON object";
                return false;
            }

            string? key = null;
            ushort port = 0;
            foreach (JsonProperty property in document.RootElement.EnumerateObject())
            {
                if (property.Name.Equals("PublicKey", StringComparison.OrdinalIgnoreCase))
                {
                    key = property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString() : null;
                    if (key is null && property.Value.ValueKind != JsonValueKind.Null)
                    {
                        error = $"PublicKey {Shorten(property.Value.GetRawText())} is not a string";
                        return false;
                    }
                }
                else if (property.Name.Equals("Port", StringComparison.OrdinalIgnoreCase) && property.Value.ValueKind != JsonValueKind.Null)
                {
                    if (property.Value.ValueKind != JsonValueKind.Number || !property.Value.TryGetUInt16(out port))
                    {
                        error = $"Port {Shorten(property.Value.GetRawText())} is not a port number";
                        return false;
                    }
                }
            }

            if (!WireGuardKey.TryParse(key, out WireGuardKey publicKey))
            {
                error = key is null ? "PublicKey is missing" : $"PublicKey \"{Shorten(key)}\" is not a WireGuard key";
                return false;
            }

            data = new WireGuardLeaseData(publicKey, port);
            return true;
        }
        catch (JsonException e)
        {
            error = $"backend data is not JSON: {e.Message}";
            return false;
        }
    }

    private static string Shorten(string text) => text.Length <= 60 ? text : text[..60] + "…";
}
