using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Flannel.Host.Cli;

/// <summary>A flag value that does not parse; <see cref="Exception.Message"/> is the reason (Go's "parse error", …).</summary>
internal sealed class FlagValueException(string reason) : Exception(reason);

/// <summary>
/// Value parsers with the semantics of Go's <c>flag</c> package (strconv.ParseBool, strconv.ParseInt with base 0)
/// plus the checks flanneld leaves to later stages (address families, port range, regex syntax), so a bad
/// value is rejected up front with the flag's name.
/// </summary>
internal static class GoFlagValues
{
    private const string ParseError = "parse error";
    private const string RangeError = "value out of range";

    /// <summary>strconv.ParseBool: 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False.</summary>
    public static bool ParseBool(string text) => text switch
    {
        "1" or "t" or "T" or "TRUE" or "true" or "True" => true,
        "0" or "f" or "F" or "FALSE" or "false" or "False" => false,
        _ => throw new FlagValueException(ParseError),
    };

    /// <summary>strconv.ParseInt(text, 0, 64) then a range check for a C# int.</summary>
    public static int ParseInt(string text)
    {
        long value = ParseInt64(text);
        if (value is < int.MinValue or > int.MaxValue)
        {
            throw new FlagValueException(RangeError);
        }

        return (int)value;
    }

    /// <summary>Go's base-0 integer syntax: optional sign, 0x/0o/0b prefixes, a leading 0 for octal, underscores after a prefix.</summary>
    public static long ParseInt64(string text)
    {
        ReadOnlySpan<char> s = text;
        bool negative = false;
        if (s.Length > 0 && (s[0] == '+' || s[0] == '-'))
        {
            negative = s[0] == '-';
            s = s[1..];
        }

        if (s.IsEmpty)
        {
            throw new FlagValueException(ParseError);
        }

        int numberBase = 10;
        bool prefixed = false;
        if (s.Length >= 2 && s[0] == '0')
        {
            switch (char.ToLowerInvariant(s[1]))
            {
                case 'x': numberBase = 16; s = s[2..]; prefixed = true; break;
                case 'o': numberBase = 8; s = s[2..]; prefixed = true; break;
                case 'b': numberBase = 2; s = s[2..]; prefixed = true; break;
                default: numberBase = 8; s = s[1..]; prefixed = true; break;
            }
        }

        // Go allows underscores only with base 0 and a prefix, each one between digits (or right after the prefix).
        ulong magnitude = 0;
        bool sawDigit = false;
        char previous = prefixed ? '_' : '\0';
        foreach (char c in s)
        {
            if (c == '_')
            {
                if (!prefixed || previous == '_' && sawDigit)
                {
                    throw new FlagValueException(ParseError);
                }

                previous = c;
                continue;
            }

            int digit = c switch
            {
                >= '0' and <= '9' => c - '0',
                >= 'a' and <= 'z' => c - 'a' + 10,
                >= 'A' and <= 'Z' => c - 'A' + 10,
                _ => 99,
            };
            if (digit >= numberBase)
            {
                throw new FlagValueException(ParseError);
            }

            if (magnitude > (ulong.MaxValue - (ulong)digit) / (ulong)numberBase)
            {
                throw new FlagValueException(RangeError);
            }

            magnitude = magnitude * (ulong)numberBase + (ulong)digit;
            sawDigit = true;
            previous = c;
        }

        if (previous == '_' || !sawDigit && numberBase != 8)
        {
            throw new FlagValueException(ParseError);
        }

        if (negative)
        {
            return magnitude > (ulong)long.MaxValue + 1 ? throw new FlagValueException(RangeError) : (long)(0 - magnitude);
        }

        return magnitude > long.MaxValue ? throw new FlagValueException(RangeError) : (long)magnitude;
    }

    /// <summary>An int within [min, max].</summary>
    /// <summary>Go's time.ParseDuration (e.g. <c>1m0s</c>, <c>500ms</c>); <c>0</c> when <paramref name="allowZero"/>.</summary>
    public static TimeSpan ParseDuration(string text, bool allowZero)
    {
        if (allowZero && text == "0")
        {
            return TimeSpan.Zero;
        }

        if (!Flannel.Host.Status.SubcommandFlags.TryParseDuration(text, out TimeSpan value) || (value == TimeSpan.Zero && !allowZero))
        {
            throw new FlagValueException(allowZero ? "parse error: a duration such as 30s, 1m0s or 0" : "parse error: a positive duration such as 500ms or 1s");
        }

        return value;
    }

    public static int ParseIntInRange(string text, int min, int max)
    {
        int value = ParseInt(text);
        if (value < min || value > max)
        {
            throw new FlagValueException(max == int.MaxValue ? $"must be at least {min}" : $"must be between {min} and {max}");
        }

        return value;
    }

    /// <summary>An optional address of one family; the empty string means "not set".</summary>
    public static IPAddress? ParseOptionalAddress(string text, AddressFamily family)
    {
        if (text.Length == 0)
        {
            return null;
        }

        if (!IPAddress.TryParse(text, out IPAddress? address) || address.AddressFamily != family || text.Contains('%', StringComparison.Ordinal))
        {
            throw new FlagValueException(family == AddressFamily.InterNetwork ? "not an IPv4 address" : "not an IPv6 address");
        }

        return address;
    }

    /// <summary>An IPv4 or IPv6 address; the empty string means "not set".</summary>
    public static IPAddress? ParseOptionalAnyAddress(string text)
    {
        if (text.Length == 0)
        {
            return null;
        }

        return IPAddress.TryParse(text, out IPAddress? address) && !text.Contains('%', StringComparison.Ordinal)
            ? address
            : throw new FlagValueException("not an IP address");
    }

    /// <summary>A regular expression that must compile (flannel would only fail at interface selection).</summary>
    public static string ParseRegex(string text)
    {
        try
        {
            _ = new Regex(text, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        }
        catch (ArgumentException e)
        {
            throw new FlagValueException("invalid regular expression: " + e.Message);
        }

        return text;
    }

    /// <summary>klog's <c>-v</c>: a base-10 int32 level.</summary>
    public static int ParseVerbosity(string text)
    {
        if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int level))
        {
            throw new FlagValueException(ParseError);
        }

        return level;
    }

    /// <summary>klog's <c>-vmodule</c>: a comma-separated list of <c>pattern=N</c>.</summary>
    public static string ParseVModule(string text)
    {
        if (text.Length == 0)
        {
            return text;
        }

        foreach (string item in text.Split(','))
        {
            int equals = item.IndexOf('=', StringComparison.Ordinal);
            if (item.Length == 0)
            {
                continue;
            }

            if (equals <= 0 || !int.TryParse(item.AsSpan(equals + 1), NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                throw new FlagValueException("syntax error: expect comma-separated list of filename=N");
            }
        }

        return text;
    }

    /// <summary>klog's <c>-log_backtrace_at</c>: empty or <c>file.go:line</c>.</summary>
    public static string ParseTraceLocation(string text)
    {
        if (text.Length == 0)
        {
            return text;
        }

        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out _))
        {
            throw new FlagValueException("syntax error: expect file.go:234");
        }

        return text;
    }
}
