using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Flannel.Subnets;

/// <summary>
/// The two pieces of Go's <c>encoding/json</c> output that System.Text.Json does not reproduce: how
/// <c>json.Marshal</c> escapes a string and how it compacts a <c>json.RawMessage</c>.
/// </summary>
/// <remarks>
/// Go escapes <c>&lt; &gt; &amp;</c>, U+2028 and U+2029 (HTML-safe output) with lower-case hex, writes
/// <c>\"</c>, <c>\\</c>, <c>\n</c>, <c>\r</c>, <c>\t</c>, <c>\b</c>, <c>\f</c> in short form and leaves every other
/// non-ASCII character as UTF-8. System.Text.Json's default encoder escapes <c>"</c> as <c>\u0022</c> and all
/// non-ASCII text with upper-case hex, so the two writers differ for such values; these helpers produce Go's
/// bytes and are fed to the writer as raw values.
/// </remarks>
internal static class GoJson
{
    private const string Hex = "0123456789abcdef";

    /// <summary>Go's quoted form of <paramref name="value"/> (with the surrounding quotes), as UTF-8.</summary>
    public static byte[] QuoteString(string value)
    {
        var output = new ArrayBufferWriter<byte>(value.Length + 2);
        Write(output, (byte)'"');
        Span<byte> utf8 = stackalloc byte[4];
        ReadOnlySpan<char> remaining = value;
        while (!remaining.IsEmpty)
        {
            if (Rune.DecodeFromUtf16(remaining, out Rune rune, out int consumed) != OperationStatus.Done)
            {
                // An unpaired surrogate cannot be written as UTF-8; Go writes invalid UTF-8 as this escape.
                WriteAscii(output, "\\ufffd");
                remaining = remaining[consumed..];
                continue;
            }

            remaining = remaining[consumed..];
            int scalar = rune.Value;
            switch (scalar)
            {
                case '"': WriteAscii(output, "\\\""); break;
                case '\\': WriteAscii(output, "\\\\"); break;
                case '\n': WriteAscii(output, "\\n"); break;
                case '\r': WriteAscii(output, "\\r"); break;
                case '\t': WriteAscii(output, "\\t"); break;
                case '\b': WriteAscii(output, "\\b"); break;
                case '\f': WriteAscii(output, "\\f"); break;
                case < 0x20 or '<' or '>' or '&':
                    WriteAscii(output, "\\u00");
                    Write(output, (byte)Hex[scalar >> 4]);
                    Write(output, (byte)Hex[scalar & 0xF]);
                    break;
                case 0x2028 or 0x2029:
                    WriteAscii(output, "\\u202");
                    Write(output, (byte)Hex[scalar & 0xF]);
                    break;
                default:
                    int length = rune.EncodeToUtf8(utf8);
                    output.Write(utf8[..length]);
                    break;
            }
        }

        Write(output, (byte)'"');
        return output.WrittenSpan.ToArray();
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
}
