// Shared source: compiled into Flannel.Core, Flannel.Store.Kube, Flannel.Backends.Extension and the flannel CNI plugin (which references no
// Flannel package), so there is one Go-compatible JSON writer. Internal in each; keep it dependency-free.
using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Flannel;

/// <summary>
/// A JSON object whose members keep their declaration order when written, like a Go struct
/// (as opposed to a Go map, whose keys <see cref="GoJson"/> writes sorted).
/// </summary>
internal sealed class GoStruct : List<KeyValuePair<string, object?>>
{
    public void Add(string name, object? value) => Add(new KeyValuePair<string, object?>(name, value));
}

/// <summary>
/// JSON exactly as Go's <c>encoding/json</c> writes it, where System.Text.Json differs: string escaping (Go escapes
/// <c>&lt; &gt; &amp;</c>, U+2028 and U+2029 with lower-case hex, writes <c>\"</c> <c>\\</c> <c>\n</c> <c>\r</c>
/// <c>\t</c> <c>\b</c> <c>\f</c> in short form, other control characters as <c>\u00xx</c>, invalid UTF-16 as
/// <c>\ufffd</c>, and every other character as UTF-8; System.Text.Json writes <c>\u0022</c> for a quote and escapes
/// all non-ASCII text), the compaction of a <c>json.RawMessage</c>, float64 formatting, and the
/// <c>map[string]interface{}</c> model flannel's CNI plugin reads and writes: values are
/// <see cref="Dictionary{TKey,TValue}"/> (objects, last duplicate key wins), <see cref="List{T}"/>,
/// <see cref="string"/>, <see cref="double"/> (every number is a float64), <see cref="bool"/> and null, and the
/// writer sorts map keys as Go does.
/// </summary>
internal static class GoJson
{
    private const string Hex = "0123456789abcdef";

    /// <summary>Parses one JSON document; throws <see cref="JsonException"/> with a position on bad input.</summary>
    public static object? Parse(ReadOnlySpan<byte> utf8)
    {
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 10000 });
        if (!reader.Read())
        {
            throw new JsonException("unexpected end of JSON input");
        }

        object? value = ReadValue(ref reader);
        if (reader.Read())
        {
            throw new JsonException($"invalid character after top-level value at byte {reader.TokenStartIndex}");
        }

        return value;
    }

    private static object? ReadValue(ref Utf8JsonReader reader)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
                var map = new Dictionary<string, object?>(StringComparer.Ordinal);
                while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                {
                    string key = reader.GetString()!;
                    reader.Read();
                    map[key] = ReadValue(ref reader);
                }

                return map;
            case JsonTokenType.StartArray:
                var list = new List<object?>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    list.Add(ReadValue(ref reader));
                }

                return list;
            case JsonTokenType.String:
                return reader.GetString();
            case JsonTokenType.Number:
                // Go decodes every number into an interface{} as float64; out-of-range is an error there too.
                return reader.TryGetDouble(out double number) && double.IsFinite(number)
                    ? number
                    : throw new JsonException($"number {Encoding.UTF8.GetString(reader.ValueSpan)} out of range");
            case JsonTokenType.True:
                return true;
            case JsonTokenType.False:
                return false;
            case JsonTokenType.Null:
                return null;
            default:
                throw new JsonException($"unexpected JSON token {reader.TokenType}");
        }
    }

    /// <summary>Serialises compactly, as Go's <c>json.Marshal</c>.</summary>
    public static byte[] Serialize(object? value)
    {
        var text = new StringBuilder();
        Write(text, value, indent: null, depth: 0);
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    /// <summary>Serialises with an indent per level, as Go's <c>json.MarshalIndent(v, "", indent)</c>.</summary>
    public static string SerializeIndented(object? value, string indent = "    ")
    {
        var text = new StringBuilder();
        Write(text, value, indent, depth: 0);
        return text.ToString();
    }

    private static void Write(StringBuilder text, object? value, string? indent, int depth)
    {
        switch (value)
        {
            case null:
                text.Append("null");
                break;
            case string s:
                WriteString(text, s);
                break;
            case bool b:
                text.Append(b ? "true" : "false");
                break;
            case double d:
                text.Append(FormatFloat(d));
                break;
            case int or long or uint or ulong:
                text.Append(Convert.ToString(value, CultureInfo.InvariantCulture));
                break;
            case GoStruct members:
                WriteObject(text, members, indent, depth);
                break;
            case IDictionary<string, object?> map:
                WriteObject(text, map.OrderBy(p => p.Key, GoStringComparer.Instance), indent, depth);
                break;
            case System.Collections.IEnumerable items:
                WriteArray(text, items, indent, depth);
                break;
            default:
                throw new ArgumentException($"cannot serialise a {value.GetType().Name} as JSON", nameof(value));
        }
    }

    private static void WriteObject(StringBuilder text, IEnumerable<KeyValuePair<string, object?>> members, string? indent, int depth)
    {
        text.Append('{');
        bool first = true;
        foreach ((string key, object? member) in members)
        {
            if (!first)
            {
                text.Append(',');
            }

            first = false;
            NewLine(text, indent, depth + 1);
            WriteString(text, key);
            text.Append(indent is null ? ":" : ": ");
            Write(text, member, indent, depth + 1);
        }

        if (!first)
        {
            NewLine(text, indent, depth);
        }

        text.Append('}');
    }

    private static void WriteArray(StringBuilder text, System.Collections.IEnumerable items, string? indent, int depth)
    {
        text.Append('[');
        bool first = true;
        foreach (object? item in items)
        {
            if (!first)
            {
                text.Append(',');
            }

            first = false;
            NewLine(text, indent, depth + 1);
            Write(text, item, indent, depth + 1);
        }

        if (!first)
        {
            NewLine(text, indent, depth);
        }

        text.Append(']');
    }

    private static void NewLine(StringBuilder text, string? indent, int depth)
    {
        if (indent is null)
        {
            return;
        }

        text.Append('\n');
        for (int i = 0; i < depth; i++)
        {
            text.Append(indent);
        }
    }

    /// <summary>Go's string escaping with HTML escaping on (json.Marshal's default).</summary>
    public static void WriteString(StringBuilder text, string value)
    {
        text.Append('"');
        for (int i = 0; i < value.Length; i++)
        {
            char c = value[i];
            switch (c)
            {
                case '"': text.Append("\\\""); break;
                case '\\': text.Append("\\\\"); break;
                case '\n': text.Append("\\n"); break;
                case '\r': text.Append("\\r"); break;
                case '\t': text.Append("\\t"); break;
                case '\b': text.Append("\\b"); break;
                case '\f': text.Append("\\f"); break;
                case '<' or '>' or '&' or '\u2028' or '\u2029':
                    text.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    break;
                default:
                    if (c < 0x20)
                    {
                        text.Append("\\u00").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    }
                    else if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                    {
                        text.Append(c).Append(value[++i]);
                    }
                    else if (char.IsSurrogate(c))
                    {
                        // Go replaces invalid UTF-8 with U+FFFD and escapes it.
                        text.Append("\\ufffd");
                    }
                    else
                    {
                        text.Append(c);
                    }

                    break;
            }
        }

        text.Append('"');
    }

    /// <summary>
    /// Go's float64 encoding: shortest round-trip digits, plain notation unless |f| &lt; 1e-6 or ≥ 1e21,
    /// exponents without a leading zero (<c>1e-7</c>, <c>1e+21</c>).
    /// </summary>
    public static string FormatFloat(double value)
    {
        double abs = Math.Abs(value);
        bool exponential = abs != 0 && (abs < 1e-6 || abs >= 1e21);
        string shortest = value.ToString("R", CultureInfo.InvariantCulture);

        // Decompose .NET's shortest form into sign, digits and decimal exponent (value = 0.d1d2... × 10^pointPosition).
        bool negative = shortest.StartsWith('-');
        string body = negative ? shortest[1..] : shortest;
        int exponent = 0;
        int e = body.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exponent = int.Parse(body.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            body = body[..e];
        }

        int dot = body.IndexOf('.', StringComparison.Ordinal);
        string digits = dot >= 0 ? body.Remove(dot, 1) : body;
        int pointPosition = (dot >= 0 ? dot : body.Length) + exponent;
        int leadingZeros = 0;
        while (leadingZeros < digits.Length - 1 && digits[leadingZeros] == '0')
        {
            leadingZeros++;
        }

        digits = digits[leadingZeros..];
        pointPosition -= leadingZeros;
        digits = digits.TrimEnd('0');
        if (digits.Length == 0)
        {
            return negative ? "-0" : "0";
        }

        var text = new StringBuilder();
        if (negative)
        {
            text.Append('-');
        }

        if (exponential)
        {
            text.Append(digits[0]);
            if (digits.Length > 1)
            {
                text.Append('.').Append(digits, 1, digits.Length - 1);
            }

            int goExponent = pointPosition - 1;
            text.Append('e').Append(goExponent < 0 ? '-' : '+');
            int magnitude = Math.Abs(goExponent);
            text.Append(magnitude < 10 && goExponent >= 0 ? "0" : "").Append(magnitude.ToString(CultureInfo.InvariantCulture));
            return text.ToString();
        }

        if (pointPosition <= 0)
        {
            text.Append("0.").Append('0', -pointPosition).Append(digits);
        }
        else if (pointPosition >= digits.Length)
        {
            text.Append(digits).Append('0', pointPosition - digits.Length);
        }
        else
        {
            text.Append(digits, 0, pointPosition).Append('.').Append(digits, pointPosition, digits.Length - pointPosition);
        }

        return text.ToString();
    }

    /// <summary>Go's quoted form of <paramref name="value"/> (with the surrounding quotes), as UTF-8.</summary>
    public static byte[] QuoteString(string value)
    {
        var text = new StringBuilder(value.Length + 2);
        WriteString(text, value);
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    /// <summary>
    /// Validates <paramref name="json"/> as one JSON value and returns it compacted as Go compacts a raw
    /// message: whitespace outside strings removed, string contents kept byte for byte, and (when
    /// <paramref name="escapeHtml"/> is set, as in <c>json.Marshal</c>) <c>&lt; &gt; &amp;</c> U+2028 U+2029 escaped.
    /// </summary>
    /// <exception cref="JsonException"><paramref name="json"/> is not exactly one valid JSON value.</exception>
    public static byte[] Compact(ReadOnlySpan<byte> json, bool escapeHtml)
    {
        Validate(json);
        var output = new ArrayBufferWriter<byte>(json.Length);
        bool inString = false;
        bool escaped = false;
        for (int i = 0; i < json.Length; i++)
        {
            byte b = json[i];
            if (escapeHtml && b is (byte)'<' or (byte)'>' or (byte)'&')
            {
                WriteAscii(output, "\\u00");
                Write(output, (byte)Hex[b >> 4]);
                Write(output, (byte)Hex[b & 0xF]);
                escaped = false;
                continue;
            }

            // U+2028 and U+2029 are E2 80 A8 / E2 80 A9 in UTF-8.
            if (escapeHtml && b == 0xE2 && i + 2 < json.Length && json[i + 1] == 0x80 && (json[i + 2] & ~1) == 0xA8)
            {
                WriteAscii(output, "\\u202");
                Write(output, (byte)Hex[json[i + 2] & 0xF]);
                i += 2;
                escaped = false;
                continue;
            }

            if (inString)
            {
                if (escaped)
                {
                    escaped = false;
                }
                else if (b == '\\')
                {
                    escaped = true;
                }
                else if (b == '"')
                {
                    inString = false;
                }

                Write(output, b);
            }
            else if (b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r')
            {
                // insignificant whitespace
            }
            else
            {
                inString = b == '"';
                Write(output, b);
            }
        }

        return output.WrittenSpan.ToArray();
    }

    /// <summary>Compacts UTF-16 JSON text; see <see cref="Compact(ReadOnlySpan{byte}, bool)"/>.</summary>
    public static string CompactToString(string json, bool escapeHtml) =>
        Encoding.UTF8.GetString(Compact(Encoding.UTF8.GetBytes(json), escapeHtml));

    private static void Validate(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        if (!reader.Read())
        {
            throw new JsonException("The JSON value is empty.");
        }

        reader.Skip();
        if (reader.Read())
        {
            throw new JsonException("More than one JSON value.");
        }
    }

    private static void Write(ArrayBufferWriter<byte> output, byte value)
    {
        output.GetSpan(1)[0] = value;
        output.Advance(1);
    }

    private static void WriteAscii(ArrayBufferWriter<byte> output, string text)
    {
        Span<byte> span = output.GetSpan(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            span[i] = (byte)text[i];
        }

        output.Advance(text.Length);
    }

    /// <summary>Orders strings by their UTF-8 bytes, as Go's sort.Strings does for map keys.</summary>
    private sealed class GoStringComparer : IComparer<string>
    {
        public static readonly GoStringComparer Instance = new();

        public int Compare(string? x, string? y)
        {
            // UTF-16 ordinal order equals UTF-8 byte order except for surrogates versus U+E000..U+FFFF.
            ReadOnlySpan<char> a = x, b = y;
            int length = Math.Min(a.Length, b.Length);
            for (int i = 0; i < length; i++)
            {
                if (a[i] != b[i])
                {
                    return Fixup(a[i]) - Fixup(b[i]);
                }
            }

            return a.Length - b.Length;
        }

        private static int Fixup(char c) => c >= 0xD800 ? (c >= 0xE000 ? c - 0x800 : c + 0x2000) : c;
    }
}
