using System.Globalization;
using System.Text;

namespace Flannel.Store.Kube.Internal;

/// <summary>
/// Writes JSON strings exactly as Go's <c>encoding/json</c> does, so that patch bodies match flannel's byte for
/// byte: <c>"</c> and <c>\</c> are backslash-escaped, <c>\n</c> <c>\r</c> <c>\t</c> get their short forms, other
/// control characters and the HTML-sensitive <c>&lt; &gt; &amp;</c> (plus U+2028/U+2029) become <c>\u00XX</c>,
/// and lone surrogates become U+FFFD. System.Text.Json's default encoder differs (it writes <c>\u0022</c> for a
/// quote), hence this writer.
/// </summary>
internal static class GoJson
{
    public static void WriteString(StringBuilder output, string value)
    {
        output.Append('"');
        for (int i = 0; i < value.Length; i++)
        {
            char c = value[i];
            switch (c)
            {
                case '"':
                    output.Append("\\\"");
                    break;
                case '\\':
                    output.Append("\\\\");
                    break;
                case '\n':
                    output.Append("\\n");
                    break;
                case '\r':
                    output.Append("\\r");
                    break;
                case '\t':
                    output.Append("\\t");
                    break;
                case '<' or '>' or '&' or '\u2028' or '\u2029':
                    AppendUnicodeEscape(output, c);
                    break;
                default:
                    if (c < 0x20)
                    {
                        AppendUnicodeEscape(output, c);
                    }
                    else if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                    {
                        output.Append(c).Append(value[++i]);
                    }
                    else if (char.IsSurrogate(c))
                    {
                        output.Append("\\ufffd");
                    }
                    else
                    {
                        output.Append(c);
                    }

                    break;
            }
        }

        output.Append('"');
    }

    private static void AppendUnicodeEscape(StringBuilder output, char c) =>
        output.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
}
