using System.CommandLine;
using System.CommandLine.Parsing;

namespace Flannel.Host.Cli;

/// <summary>
/// One flanneld flag: its Go name, usage text, value kind, and how a value is parsed and stored into
/// <see cref="FlanneldOptions"/>. The System.CommandLine <see cref="Option"/> is generated from it.
/// </summary>
internal abstract class FlagSpec
{
    protected FlagSpec(string name, string usage, string? defaultText, bool isBool, bool isRepeatable, bool readsEnvironment)
    {
        Name = name;
        Usage = usage;
        DefaultText = defaultText;
        IsBool = isBool;
        IsRepeatable = isRepeatable;
        ReadsEnvironment = readsEnvironment;
    }

    /// <summary>The Go flag name, e.g. <c>etcd-endpoints</c>.</summary>
    public string Name { get; }

    /// <summary>The usage line printed by <c>-help</c>.</summary>
    public string Usage { get; }

    /// <summary>The default as Go's PrintDefaults shows it, or null when the default is the zero value.</summary>
    public string? DefaultText { get; }

    /// <summary>True for a boolean flag (takes no separate argument; <c>--flag=false</c> to turn it off).</summary>
    public bool IsBool { get; }

    /// <summary>True for a flag that may be given several times (values accumulate).</summary>
    public bool IsRepeatable { get; }

    /// <summary>False for <c>--version</c>: flanneld checks it before reading the environment.</summary>
    public bool ReadsEnvironment { get; }

    /// <summary>The environment variable that backs this flag: <c>FLANNELD_</c> + upper-case name with <c>-</c> → <c>_</c>.</summary>
    public string EnvironmentVariable => "FLANNELD_" + Name.Replace('-', '_').ToUpperInvariant();

    /// <summary>The System.CommandLine option for this flag (<c>--name</c> with alias <c>-name</c>).</summary>
    public abstract Option Option { get; }

    /// <summary>The Go type word printed in the usage (<c>string</c>, <c>int</c>, <c>value</c>; empty for bools).</summary>
    public abstract string TypeWord { get; }

    /// <summary>Copies the parsed command-line value into <paramref name="options"/>.</summary>
    public abstract FlanneldOptions ApplyParsed(FlanneldOptions options, ParseResult result);

    /// <summary>Parses <paramref name="text"/> (one value, as from the environment) and stores it; throws <see cref="FlagValueException"/>.</summary>
    public abstract FlanneldOptions ApplyText(FlanneldOptions options, string text);

    /// <summary>The Go-style error for a bad command-line value.</summary>
    public string CommandLineError(string value, string reason) => IsBool
        ? $"invalid boolean value \"{value}\" for -{Name}: {reason}"
        : $"invalid value \"{value}\" for flag -{Name}: {reason}";
}

/// <summary>A flag whose value has type <typeparamref name="T"/>.</summary>
internal sealed class FlagSpec<T> : FlagSpec
{
    private readonly Func<string, T> _parse;
    private readonly Func<FlanneldOptions, T, FlanneldOptions> _store;
    private readonly Option<ParsedValue> _option;

    private FlagSpec(string name, string usage, string? defaultText, bool isBool, bool readsEnvironment,
        Func<string, T> parse, Func<FlanneldOptions, T, FlanneldOptions> store)
        : base(name, usage, defaultText, isBool, isRepeatable: false, readsEnvironment)
    {
        _parse = parse;
        _store = store;
        _option = new Option<ParsedValue>("--" + name, "-" + name)
        {
            Description = usage,
            // Every occurrence carries one value; a repeated Go flag keeps the last one (see ParseToken).
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
            CustomParser = ParseToken,
        };
    }

    public override Option Option => _option;

    public override string TypeWord => IsBool ? "" : typeof(T) == typeof(int) ? "int" : typeof(T) == typeof(TimeSpan) ? "duration" : "string";

    public static FlagSpec<T> Create(string name, string usage, string? defaultText,
        Func<string, T> parse, Func<FlanneldOptions, T, FlanneldOptions> store, bool readsEnvironment = true) =>
        new(name, usage, defaultText, typeof(T) == typeof(bool), readsEnvironment, parse, store);

    public override FlanneldOptions ApplyParsed(FlanneldOptions options, ParseResult result) =>
        _store(options, result.GetValue(_option)!.Value);

    public override FlanneldOptions ApplyText(FlanneldOptions options, string text) => _store(options, _parse(text));

    private ParsedValue? ParseToken(ArgumentResult result)
    {
        // Repeating a single-valued Go flag keeps the last value.
        string text = result.Tokens[^1].Value;
        try
        {
            return new ParsedValue(_parse(text));
        }
        catch (FlagValueException e)
        {
            result.AddError(CommandLineError(text, e.Message));
            return null;
        }
    }

    /// <summary>
    /// Boxes the parsed value: System.CommandLine treats a null from a custom parser as "convert the token
    /// yourself", which fails for optional values such as an empty <c>--public-ip=</c>.
    /// </summary>
    private sealed record ParsedValue(T Value);
}

/// <summary>A repeatable string flag (<c>--iface</c>, <c>--iface-regex</c>): every occurrence adds a value.</summary>
internal sealed class RepeatableFlagSpec : FlagSpec
{
    private readonly Func<string, string> _parseOne;
    private readonly Func<FlanneldOptions, IReadOnlyList<string>, FlanneldOptions> _store;
    private readonly Option<string[]> _option;

    public RepeatableFlagSpec(string name, string usage, Func<string, string> parseOne,
        Func<FlanneldOptions, IReadOnlyList<string>, FlanneldOptions> store)
        : base(name, usage, defaultText: null, isBool: false, isRepeatable: true, readsEnvironment: true)
    {
        _parseOne = parseOne;
        _store = store;
        _option = new Option<string[]>("--" + name, "-" + name)
        {
            Description = usage,
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
            CustomParser = ParseTokens,
        };
    }

    public override Option Option => _option;

    public override string TypeWord => "value";

    public override FlanneldOptions ApplyParsed(FlanneldOptions options, ParseResult result) =>
        _store(options, result.GetValue(_option) ?? []);

    // The environment can only carry one value for a repeatable flag (flagutil calls Set once).
    public override FlanneldOptions ApplyText(FlanneldOptions options, string text) => _store(options, [_parseOne(text)]);

    private string[] ParseTokens(ArgumentResult result)
    {
        var values = new string[result.Tokens.Count];
        for (int i = 0; i < values.Length; i++)
        {
            string text = result.Tokens[i].Value;
            try
            {
                values[i] = _parseOne(text);
            }
            catch (FlagValueException e)
            {
                result.AddError(CommandLineError(text, e.Message));
            }
        }

        return values;
    }
}
