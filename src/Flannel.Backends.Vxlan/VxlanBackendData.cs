using System.Globalization;
using System.Text.Json;
using Flannel.Netlink;

namespace Flannel.Backends.Vxlan;

/// <summary>The vxlan lease BackendData, <c>{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}</c>.</summary>
internal static class VxlanBackendData
{
    /// <summary>Writes the JSON exactly as flannel does (field order, lower-case colon MAC, no spaces).</summary>
    public static string Format(uint vni, MacAddress vtepMac) =>
        string.Create(CultureInfo.InvariantCulture, $"{{\"VNI\":{vni},\"VtepMAC\":\"{vtepMac}\"}}");

    /// <summary>Reads the VtepMAC of a peer's BackendData.</summary>
    /// <exception cref="FormatException">The data is missing, not JSON, or has no valid VtepMAC; the message quotes it.</exception>
    public static MacAddress ParseVtepMac(string? backendData, string field)
    {
        if (string.IsNullOrWhiteSpace(backendData) || backendData == "null")
        {
            throw new FormatException($"{field} is missing, so the peer's VtepMAC is unknown");
        }

        try
        {
            using JsonDocument document = JsonDocument.Parse(backendData);
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                foreach (JsonProperty property in document.RootElement.EnumerateObject())
                {
                    if (string.Equals(property.Name, "VtepMAC", StringComparison.OrdinalIgnoreCase))
                    {
                        string? text = property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString() : property.Value.GetRawText();
                        return MacAddress.TryParse(text, out MacAddress mac) && mac != MacAddress.Zero
                            ? mac
                            : throw new FormatException($"{field}.VtepMAC '{text}' is not a MAC address of the form aa:bb:cc:dd:ee:ff");
                    }
                }
            }
        }
        catch (JsonException ex)
        {
            throw new FormatException($"{field} '{backendData}' is not valid JSON: {ex.Message}", ex);
        }

        throw new FormatException($"{field} '{backendData}' has no VtepMAC");
    }

    /// <summary>Reads a VtepMAC if the data has a valid one (used for the MAC this node published before a restart).</summary>
    public static MacAddress? TryParseVtepMac(string? backendData)
    {
        try
        {
            return ParseVtepMac(backendData, "BackendData");
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
