using System.Globalization;
using System.Text.Json;
using Flannel.Netlink;
using Flannel.Subnets;

namespace Flannel.Backends.Vxlan;

/// <summary>The vxlan lease BackendData, <c>{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}</c>.</summary>
internal static class VxlanBackendData
{
    /// <summary>Writes the JSON exactly as flannel does (field order, lower-case colon MAC, no spaces).</summary>
    public static string Format(uint vni, MacAddress vtepMac) =>
        string.Create(CultureInfo.InvariantCulture, $"{{\"VNI\":{vni},\"VtepMAC\":\"{vtepMac}\"}}");

    /// <summary>Reads the VtepMAC of a peer's BackendData.</summary>
    /// <exception cref="FormatException">The data is missing, not JSON, or has no valid VtepMAC; the message quotes it.</exception>
    public static MacAddress ParseVtepMac(string? backendData, string field) => Read(backendData, field, out _);

    /// <summary>Reads the VtepMAC and the VNI (null when it has none) in one parse.</summary>
    /// <exception cref="FormatException">The data is missing, not JSON, or has no valid VtepMAC; the message quotes it.</exception>
    private static MacAddress Read(string? backendData, string field, out uint? vni)
    {
        vni = null;
        if (string.IsNullOrWhiteSpace(backendData) || backendData == "null")
        {
            throw new FormatException($"{field} is missing, so the peer's VtepMAC is unknown");
        }

        string? macText = null;
        bool hasMac = false;
        try
        {
            using JsonDocument document = JsonDocument.Parse(backendData);
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                bool hasVni = false;
                foreach (JsonProperty property in document.RootElement.EnumerateObject())
                {
                    // Go's decoder matches names case-insensitively; the first of each is read.
                    if (!hasMac && (property.NameEquals("VtepMAC") || string.Equals(property.Name, "VtepMAC", StringComparison.OrdinalIgnoreCase)))
                    {
                        hasMac = true;
                        macText = property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString() : property.Value.GetRawText();
                    }
                    else if (!hasVni && (property.NameEquals("VNI") || string.Equals(property.Name, "VNI", StringComparison.OrdinalIgnoreCase)))
                    {
                        hasVni = true;
                        vni = property.Value.ValueKind == JsonValueKind.Number && property.Value.TryGetUInt32(out uint value) ? value : null;
                    }
                }
            }
        }
        catch (JsonException ex)
        {
            throw new FormatException($"{field} '{backendData}' is not valid JSON: {ex.Message}", ex);
        }

        if (!hasMac)
        {
            throw new FormatException($"{field} '{backendData}' has no VtepMAC");
        }

        return MacAddress.TryParse(macText, out MacAddress mac) && mac != MacAddress.Zero
            ? mac
            : throw new FormatException($"{field}.VtepMAC '{macText}' is not a MAC address of the form aa:bb:cc:dd:ee:ff");
    }

    /// <summary>Rule name: the VtepMAC is missing, malformed, zero or multicast.</summary>
    public const string VtepMacRule = "vtep-mac";

    /// <summary>Rule name: the VNI is missing or not this network's.</summary>
    public const string VniRule = "vni";

    /// <summary>
    /// The vxlan admission rules for one family's BackendData: a unicast, non-zero VtepMAC (the kernel refuses a
    /// multicast one in the FDB) and this network's VNI (a peer on another VNI cannot decapsulate our frames).
    /// </summary>
    public static LeaseRejection? Check(string? backendData, string field, uint vni)
    {
        MacAddress mac;
        uint? peerVni;
        try
        {
            mac = Read(backendData, field, out peerVni);
        }
        catch (FormatException ex)
        {
            return new LeaseRejection(VtepMacRule, ex.Message);
        }

        if (mac.IsMulticast)
        {
            return new LeaseRejection(VtepMacRule, $"{field}.VtepMAC '{mac}' is a multicast address, not a VTEP");
        }

        return peerVni == vni
            ? null
            : new LeaseRejection(VniRule, $"{field}.VNI {(peerVni is { } v ? v.ToString(CultureInfo.InvariantCulture) : "(missing)")} is not this network's VNI {vni}");
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
