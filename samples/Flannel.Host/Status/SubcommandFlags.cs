namespace Flannel.Host.Status;

/// <summary>
/// Go-style flags for flanneld's subcommands (<c>status</c>, <c>doctor</c>): <c>-name value</c>, <c>--name=value</c>,
/// <c>-o json</c>; booleans take no value (<c>--probe=false</c> to turn one off). Flags the subcommand does not own are
/// passed through in order (doctor hands them to flanneld's own parser).
/// </summary>
internal sealed class SubcommandFlags
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    private SubcommandFlags(List<string> rest) => Rest = rest;

    /// <summary>The arguments that are not this subcommand's flags.</summary>
    public IReadOnlyList<string> Rest { get; }

    /// <summary>True when -h or --help was given.</summary>
    public bool HelpRequested { get; private set; }

    /// <summary>
    /// Takes this subcommand's flags out of <paramref name="args"/>: <paramref name="valued"/> take a value,
    /// <paramref name="booleans"/> do not (an optional <c>=true</c>/<c>=false</c>).
    /// </summary>
    /// <exception cref="ArgumentException">A valued flag without its value.</exception>
    public static SubcommandFlags Parse(IReadOnlyList<string> args, IReadOnlyCollection<string> valued, IReadOnlyCollection<string> booleans, bool passUnknown)
    {
        var rest = new List<string>();
        var flags = new SubcommandFlags(rest);
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            string name = arg.StartsWith("--", StringComparison.Ordinal) ? arg[2..] : arg.StartsWith('-') && arg.Length > 1 ? arg[1..] : string.Empty;
            string? value = null;
            int equals = name.IndexOf('=', StringComparison.Ordinal);
            if (equals >= 0)
            {
                value = name[(equals + 1)..];
                name = name[..equals];
            }

            if (name is "h" or "help")
            {
                flags.HelpRequested = true;
                continue;
            }

            if (valued.Contains(name))
            {
                value ??= i + 1 < args.Count ? args[++i] : throw new ArgumentException($"flag needs an argument: -{name}");
                flags._values[name] = value;
            }
            else if (booleans.Contains(name))
            {
                flags._values[name] = value ?? "true";
            }
            else if (passUnknown)
            {
                rest.Add(arg);
            }
            else
            {
                throw new ArgumentException(name.Length == 0 ? $"unexpected argument: {arg}" : $"flag provided but not defined: -{name}");
            }
        }

        return flags;
    }

    /// <summary>The last value of <paramref name="name"/> (or of its alias), or <paramref name="fallback"/>.</summary>
    public string Get(string name, string fallback, string? alias = null) =>
        _values.TryGetValue(name, out string? value) ? value : alias is not null && _values.TryGetValue(alias, out value) ? value : fallback;

    /// <summary>A boolean flag: Go's spellings of true and false.</summary>
    /// <exception cref="ArgumentException">Not a boolean.</exception>
    public bool GetBool(string name, bool fallback) => Get(name, fallback ? "true" : "false") switch
    {
        "1" or "t" or "T" or "true" or "TRUE" or "True" => true,
        "0" or "f" or "F" or "false" or "FALSE" or "False" => false,
        string other => throw new ArgumentException($"invalid boolean value \"{other}\" for -{name}"),
    };

    /// <summary>A duration flag: Go's syntax (<c>5s</c>, <c>500ms</c>, <c>1m</c>).</summary>
    /// <exception cref="ArgumentException">Not a positive duration.</exception>
    public TimeSpan GetDuration(string name, TimeSpan fallback)
    {
        if (!_values.TryGetValue(name, out string? text))
        {
            return fallback;
        }

        return TryParseDuration(text, out TimeSpan value) && value > TimeSpan.Zero
            ? value
            : throw new ArgumentException($"invalid value \"{text}\" for flag -{name}: a positive duration such as 5s or 500ms");
    }

    /// <summary>Go's time.ParseDuration for the units a timeout needs: a sequence of decimal numbers with ns, us, ms, s, m or h.</summary>
    internal static bool TryParseDuration(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        System.Text.RegularExpressions.MatchCollection parts = System.Text.RegularExpressions.Regex.Matches(text, @"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)");
        if (parts.Count == 0 || string.Concat(parts.Select(p => p.Value)) != text)
        {
            return false;
        }

        double ticks = 0;
        foreach (System.Text.RegularExpressions.Match part in parts)
        {
            double number = double.Parse(part.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            ticks += number * part.Groups[2].Value switch
            {
                "ns" => TimeSpan.TicksPerMicrosecond / 1000.0,
                "us" or "µs" => TimeSpan.TicksPerMicrosecond,
                "ms" => TimeSpan.TicksPerMillisecond,
                "s" => TimeSpan.TicksPerSecond,
                "m" => TimeSpan.TicksPerMinute,
                _ => TimeSpan.TicksPerHour,
            };
        }

        if (ticks > TimeSpan.MaxValue.Ticks)
        {
            return false;
        }

        value = TimeSpan.FromTicks((long)ticks);
        return true;
    }

    /// <summary>An integer flag within a range.</summary>
    /// <exception cref="ArgumentException">Not an integer in range.</exception>
    public int GetInt(string name, int fallback, int min, int max)
    {
        if (!_values.TryGetValue(name, out string? text))
        {
            return fallback;
        }

        return int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int value) && value >= min && value <= max
            ? value
            : throw new ArgumentException($"invalid value \"{text}\" for flag -{name}: an integer from {min} to {max}");
    }

    /// <summary>The output format (<c>-o table|json</c>).</summary>
    /// <exception cref="ArgumentException">Another format.</exception>
    public bool JsonOutput()
    {
        string format = Get("o", "table", alias: "output");
        return format switch
        {
            "json" => true,
            "table" or "text" => false,
            _ => throw new ArgumentException($"invalid value \"{format}\" for flag -o: json or table"),
        };
    }
}
