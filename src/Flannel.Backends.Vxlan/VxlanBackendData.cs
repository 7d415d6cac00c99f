using System.Buffers;
using System.Globalization;
using System.Text;
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
    /// <remarks>
    /// One pass of a <see cref="Utf8JsonReader"/> over the whole text (so anything that is not one JSON value fails as
    /// it would for a document), without building a document: every lease is read twice at start-up (admission,
    /// then its kernel objects), 10,000 reads for 5,000 peers, and a document per read took 8-10 ms of a native
    /// flanneld's cold start.
    /// </remarks>
    /// <exception cref="FormatException">The data is missing, not JSON, or has no valid VtepMAC; the message quotes it.</exception>
    private static MacAddress Read(string? backendData, string field, out uint? vni)
    {
        vni = null;
        if (string.IsNullOrWhiteSpace(backendData) || backendData == "null")
        {
            throw new FormatException($"{field} is missing, so the peer's VtepMAC is unknown");
        }

        byte[]? rented = null;
        int maxBytes = Encoding.UTF8.GetMaxByteCount(backendData.Length);
        Span<byte> utf8 = maxBytes <= StackLimit ? stackalloc byte[StackLimit] : (rented = ArrayPool<byte>.Shared.Rent(maxBytes));
        try
        {
            utf8 = utf8[..Encoding.UTF8.GetBytes(backendData, utf8)];
            return Read(utf8, backendData, field, out vni);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private static MacAddress Read(ReadOnlySpan<byte> utf8, string backendData, string field, out uint? vni)
    {
        vni = null;
        MacAddress mac = default;
        string? badMacText = null;
        bool hasMac = false;
        try
        {
            var reader = new Utf8JsonReader(utf8, isFinalBlock: true, state: default);
            bool isObject = reader.Read() && reader.TokenType == JsonTokenType.StartObject;
            while (isObject && reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                // As Go's decoder does: names match in any case, and a later duplicate overwrites an earlier one.
                if (GoJsonNames.Matches(ref reader, "VtepMAC"))
                {
                    hasMac = true;
                    reader.Read();
                    badMacText = ReadMac(ref reader, utf8, out mac);
                }
                else if (GoJsonNames.Matches(ref reader, "VNI"))
                {
                    reader.Read();
                    vni = reader.TokenType == JsonTokenType.Number && reader.TryGetUInt32(out uint value) ? value : null;
                    reader.Skip();
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            // The rest (all of it when the root is not an object) is read only to reject what is not one JSON value.
            while (reader.Read())
            {
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

        return badMacText is null
            ? mac
            : throw new FormatException($"{field}.VtepMAC '{badMacText}' is not a MAC address of the form aa:bb:cc:dd:ee:ff");
    }

    /// <summary>
    /// Reads the VtepMAC value at the reader: null and <paramref name="mac"/> when it is a valid, non-zero MAC
    /// string, else the value's text for the error (a string unescaped, anything else as written).
    /// </summary>
    private static string? ReadMac(ref Utf8JsonReader reader, ReadOnlySpan<byte> utf8, out MacAddress mac)
    {
        mac = default;
        if (reader.TokenType == JsonTokenType.String)
        {
            Span<char> text = stackalloc char[MaxMacText];
            int length = reader.HasValueSequence || reader.ValueSpan.Length > MaxMacText ? -1 : reader.CopyString(text);
            if (length >= 0 && MacAddress.TryParse(text[..length], out mac) && mac != MacAddress.Zero)
            {
                return null;
            }

            return reader.GetString();
        }

        int start = (int)reader.TokenStartIndex;
        reader.Skip();
        return Encoding.UTF8.GetString(utf8[start..(int)reader.BytesConsumed]);
    }

    // A MAC is 17 characters; a longer string is never one and is read as text for its error.
    private const int MaxMacText = 32;

    // BackendData is about 40 bytes; only a peer's oversized value goes to the pool.
    private const int StackLimit = 256;

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
