using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Flannel.Networking;

namespace Flannel.Subnets;

/// <summary>
/// Flannel's lease value JSON, byte for byte:
/// <c>{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}</c>
/// (Go field order; <c>PublicIPv6</c> is always written; the backend fields are omitted when empty).
/// </summary>
/// <remarks>
/// Writing goes through a System.Text.Json source-generated context (<see cref="LeaseJsonContext"/>); reading parses
/// one document and takes its members by name. The string and raw-JSON members are written by converters that emit
/// Go's exact bytes (see <see cref="GoJson"/>): System.Text.Json's own encoder escapes differently from Go for quotes, HTML characters and non-ASCII text,
/// and would re-format raw backend data instead of compacting it as <c>json.Marshal</c> does.
/// </remarks>
public static class LeaseJson
{
    /// <summary>Writes the attributes as flannel writes them.</summary>
    /// <exception cref="ArgumentException">
    /// BackendData or BackendV6Data is not valid JSON, PublicIP is not IPv4 (an IPv4-mapped IPv6 address is
    /// written as IPv4), or PublicIPv6 is not IPv6.
    /// </exception>
    public static byte[] SerializeToUtf8Bytes(LeaseAttributes attributes)
    {
        ArgumentNullException.ThrowIfNull(attributes);

        // Go keeps PublicIP in a 4-byte type and PublicIPv6 in a 16-byte one; anything else cannot be written.
        IPAddress publicIP = attributes.PublicIP.IsIPv4MappedToIPv6 ? attributes.PublicIP.MapToIPv4() : attributes.PublicIP;
        if (publicIP.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException($"PublicIP: {attributes.PublicIP} is not an IPv4 address.", nameof(attributes));
        }

        if (attributes.PublicIPv6 is { AddressFamily: not AddressFamily.InterNetworkV6 } v4InV6Field)
        {
            throw new ArgumentException($"PublicIPv6: {v4InV6Field} is not an IPv6 address.", nameof(attributes));
        }

        var model = new LeaseValueWriteModel
        {
            PublicIP = publicIP.ToString(),
            PublicIPv6 = attributes.PublicIPv6?.ToString(),

            // Go's omitempty drops empty strings and empty raw messages as well as missing ones.
            BackendType = string.IsNullOrEmpty(attributes.BackendType) ? null : attributes.BackendType,
            BackendData = CompactForWrite(attributes.BackendData, nameof(LeaseAttributes.BackendData)),
            BackendV6Data = CompactForWrite(attributes.BackendV6Data, nameof(LeaseAttributes.BackendV6Data)),
        };
        return JsonSerializer.SerializeToUtf8Bytes(model, LeaseJsonContext.Default.LeaseValueWriteModel);
    }

    /// <summary>Writes the attributes as flannel writes them, as a string.</summary>
    /// <exception cref="ArgumentException">BackendData or BackendV6Data is not valid JSON.</exception>
    public static string Serialize(LeaseAttributes attributes) => Encoding.UTF8.GetString(SerializeToUtf8Bytes(attributes));

    /// <summary>Reads a lease value written by any flannel-compatible writer.</summary>
    /// <remarks>
    /// As Go's <c>encoding/json</c>: member names match case-insensitively, unknown members are ignored, and a
    /// missing <c>PublicIP</c> reads as <c>0.0.0.0</c>. Backend data is kept as compact raw JSON.
    /// </remarks>
    /// <exception cref="LeaseFormatException">The value is malformed; the message names the field and the value.</exception>
    public static LeaseAttributes Deserialize(ReadOnlySpan<byte> utf8Json)
    {
        // One pass of a reader over the value, keeping where each member's value lies, then reading those: a
        // start-up reads thousands of leases (a document per value cost 18-24 µs per lease, mostly its parse and
        // the re-compaction of BackendData that is nearly always compact already).
        Span<Member> members = stackalloc Member[MemberNames.Length];
        try
        {
            var reader = new Utf8JsonReader(utf8Json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw new LeaseFormatException($"lease value {Excerpt(utf8Json)} is not a JSON object of lease attributes");
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                // As Go's encoding/json: names match case-insensitively, unknown members are skipped, the last wins.
                int index = MemberIndex(ref reader);
                reader.Read();
                int start = (int)reader.TokenStartIndex;
                JsonTokenType type = reader.TokenType;
                reader.Skip();
                if (index >= 0)
                {
                    members[index] = new Member(type, start, (int)reader.BytesConsumed - start);
                }
            }

            if (reader.Read())
            {
                // The reader throws on most trailing text itself; this is the rest.
                throw new JsonException("More than one JSON value.");
            }
        }
        catch (JsonException ex)
        {
            throw new LeaseFormatException(
                $"lease value {Excerpt(utf8Json)} is not a JSON object of lease attributes: {ex.Message}", ex);
        }

        return new LeaseAttributes
        {
            PublicIP = ReadAddress(utf8Json, members[0], "PublicIP", AddressFamily.InterNetwork) ?? IPAddress.Any,
            PublicIPv6 = ReadAddress(utf8Json, members[1], "PublicIPv6", AddressFamily.InterNetworkV6),
            BackendType = ReadString(utf8Json, members[2], "BackendType"),
            BackendData = ReadRaw(utf8Json, members[3]),
            BackendV6Data = ReadRaw(utf8Json, members[4]),
        };
    }

    /// <summary>Reads a lease value; see <see cref="Deserialize(ReadOnlySpan{byte})"/>.</summary>
    /// <exception cref="LeaseFormatException">The value is malformed; the message names the field and the value.</exception>
    public static LeaseAttributes Deserialize(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        return Deserialize(Encoding.UTF8.GetBytes(json));
    }

    private static string? CompactForWrite(string? raw, string field)
    {
        if (string.IsNullOrEmpty(raw))
        {
            return null;
        }

        try
        {
            return GoJson.CompactToString(raw, escapeHtml: true);
        }
        catch (JsonException ex)
        {
            throw new ArgumentException($"{field}: {raw} is not valid JSON: {ex.Message}", field, ex);
        }
    }

    /// <summary>Where a member's value lies in the lease value, and its kind; default when the member is absent.</summary>
    private readonly record struct Member(JsonTokenType Type, int Start, int Length)
    {
        public bool IsAbsentOrNull => Type is JsonTokenType.None or JsonTokenType.Null;

        public ReadOnlySpan<byte> In(ReadOnlySpan<byte> json) => json.Slice(Start, Length);
    }

    /// <summary>The members read, in the order of <see cref="Deserialize(ReadOnlySpan{byte})"/>'s result.</summary>
    private static readonly string[] MemberNames = ["PublicIP", "PublicIPv6", "BackendType", "BackendData", "BackendV6Data"];

    /// <summary>What raw backend data must not contain to be compact already (see <see cref="ReadRaw"/>).</summary>
    private static readonly SearchValues<byte> s_needsCompaction = SearchValues.Create([(byte)' ', (byte)'\t', (byte)'\n', (byte)'\r', (byte)'<', (byte)'>', (byte)'&', (byte)0xE2]);

    /// <summary>The index in <see cref="MemberNames"/> of the current name in any case, or -1.</summary>
    private static int MemberIndex(ref Utf8JsonReader reader)
    {
        for (int i = 0; i < MemberNames.Length; i++)
        {
            if (GoJsonNames.Matches(ref reader, MemberNames[i]))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>The text of a string member (its escapes undone).</summary>
    private static string StringValue(ReadOnlySpan<byte> raw)
    {
        var reader = new Utf8JsonReader(raw);
        reader.Read();
        return reader.GetString()!;
    }

    private static IPAddress? ReadAddress(ReadOnlySpan<byte> json, Member member, string field, AddressFamily family)
    {
        if (member.IsAbsentOrNull)
        {
            return null;
        }

        ReadOnlySpan<byte> raw = member.In(json);
        if (member.Type == JsonTokenType.String && IPText.TryParseAddress(StringValue(raw), family, out IPAddress? address))
        {
            return address;
        }

        string expected = family == AddressFamily.InterNetwork ? "an IPv4" : "an IPv6";
        throw new LeaseFormatException($"lease field {field}: {Encoding.UTF8.GetString(raw)} is not {expected} address");
    }

    private static string? ReadString(ReadOnlySpan<byte> json, Member member, string field)
    {
        if (member.IsAbsentOrNull)
        {
            return null;
        }

        ReadOnlySpan<byte> raw = member.In(json);
        if (member.Type != JsonTokenType.String)
        {
            throw new LeaseFormatException($"lease field {field}: {Encoding.UTF8.GetString(raw)} is not a string");
        }

        string text = StringValue(raw);
        return text.Length == 0 ? null : text;
    }

    private static string? ReadRaw(ReadOnlySpan<byte> json, Member member)
    {
        if (member.IsAbsentOrNull)
        {
            return null;
        }

        // Valid JSON (the reader went through it). Compacting changes nothing when there is no whitespace and
        // nothing Go escapes for HTML (< > &, and U+2028/U+2029, whose UTF-8 starts with E2): the usual case.
        ReadOnlySpan<byte> raw = member.In(json);
        return raw.IndexOfAny(s_needsCompaction) < 0
            ? Encoding.UTF8.GetString(raw)
            : Encoding.UTF8.GetString(GoJson.Compact(raw, escapeHtml: true));
    }

    private static string Excerpt(ReadOnlySpan<byte> utf8Json)
    {
        const int Max = 200;
        string text = Encoding.UTF8.GetString(utf8Json.Length > Max ? utf8Json[..Max] : utf8Json);
        return utf8Json.Length > Max ? $"'{text}…'" : $"'{text}'";
    }
}

/// <summary>The lease value as written: member order is Go's struct field order.</summary>
internal sealed class LeaseValueWriteModel
{
    [JsonPropertyName("PublicIP")]
    [JsonConverter(typeof(GoStringConverter))]
    public required string PublicIP { get; init; }

    // No omitempty in flannel: a missing IPv6 address is written as null.
    [JsonPropertyName("PublicIPv6")]
    [JsonConverter(typeof(GoStringConverter))]
    public string? PublicIPv6 { get; init; }

    [JsonPropertyName("BackendType")]
    [JsonConverter(typeof(GoStringConverter))]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? BackendType { get; init; }

    [JsonPropertyName("BackendData")]
    [JsonConverter(typeof(GoRawJsonConverter))]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? BackendData { get; init; }

    [JsonPropertyName("BackendV6Data")]
    [JsonConverter(typeof(GoRawJsonConverter))]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? BackendV6Data { get; init; }
}

/// <summary>Writes a string with Go's escaping.</summary>
internal sealed class GoStringConverter : JsonConverter<string>
{
    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.GetString();

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) =>
        writer.WriteRawValue(GoJson.QuoteString(value), skipInputValidation: true);
}

/// <summary>Writes already-compacted raw JSON (a Go <c>json.RawMessage</c>) verbatim.</summary>
internal sealed class GoRawJsonConverter : JsonConverter<string>
{
    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        using JsonDocument document = JsonDocument.ParseValue(ref reader);
        return GoJson.CompactToString(document.RootElement.GetRawText(), escapeHtml: true);
    }

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) =>
        writer.WriteRawValue(value, skipInputValidation: false);
}

/// <summary>Source-generated serialization metadata for the lease value.</summary>
[JsonSourceGenerationOptions(
    WriteIndented = false)]
[JsonSerializable(typeof(LeaseValueWriteModel))]
internal sealed partial class LeaseJsonContext : JsonSerializerContext;

/// <summary>A lease value could not be read. The message names the field and the value.</summary>
public sealed class LeaseFormatException : FormatException
{
    /// <summary>Creates the exception.</summary>
    public LeaseFormatException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public LeaseFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public LeaseFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
