namespace Flannel.Host.Cli;

/// <summary>One flag occurrence on the command line: its name and its value (bools always get one).</summary>
internal readonly record struct FlagOccurrence(string Name, string Value);

/// <summary>What <see cref="GoFlagTokenizer"/> found.</summary>
internal sealed record TokenizedCommandLine(IReadOnlyList<FlagOccurrence> Flags, IReadOnlyList<string> ExtraArguments, bool HelpRequested);

/// <summary>
/// Splits argv exactly as Go's <c>flag.FlagSet.Parse</c> does, so flanneld command lines keep their meaning:
/// <list type="bullet">
/// <item><c>-flag</c> and <c>--flag</c> are the same; <c>-flag=value</c> and <c>-flag value</c> for non-bool flags;</item>
/// <item>a bool flag never consumes the next argument (<c>-flag</c> = true, <c>-flag=false</c>);</item>
/// <item>parsing stops at the first non-flag argument or after <c>--</c>; <c>-</c> alone is a non-flag;</item>
/// <item><c>-h</c>/<c>-help</c> request the usage unless defined as flags.</item>
/// </list>
/// Error texts are Go's.
/// </summary>
internal static class GoFlagTokenizer
{
    public static TokenizedCommandLine Tokenize(IReadOnlyList<string> args, IReadOnlyDictionary<string, FlagSpec> flags)
    {
        var occurrences = new List<FlagOccurrence>();
        int index = 0;
        while (index < args.Count)
        {
            string arg = args[index];
            if (arg.Length < 2 || arg[0] != '-')
            {
                break;
            }

            int minuses = 1;
            if (arg[1] == '-')
            {
                minuses = 2;
                if (arg.Length == 2)
                {
                    index++;
                    break;
                }
            }

            string name = arg[minuses..];
            if (name.Length == 0 || name[0] == '-' || name[0] == '=')
            {
                throw new FlanneldCommandLineException($"bad flag syntax: {arg}", FlanneldCommandLineException.UsageExitCode);
            }

            index++;
            string? value = null;
            int equals = name.IndexOf('=', 1);
            if (equals > 0)
            {
                value = name[(equals + 1)..];
                name = name[..equals];
            }

            if (!flags.TryGetValue(name, out FlagSpec? flag))
            {
                if (name is "help" or "h")
                {
                    return new TokenizedCommandLine(occurrences, [], HelpRequested: true);
                }

                throw new FlanneldCommandLineException($"flag provided but not defined: -{name}", FlanneldCommandLineException.UsageExitCode);
            }

            if (flag.IsBool)
            {
                occurrences.Add(new FlagOccurrence(name, value ?? "true"));
                continue;
            }

            if (value is null)
            {
                if (index >= args.Count)
                {
                    throw new FlanneldCommandLineException($"flag needs an argument: -{name}", FlanneldCommandLineException.UsageExitCode);
                }

                value = args[index++];
            }

            occurrences.Add(new FlagOccurrence(name, value));
        }

        return new TokenizedCommandLine(occurrences, args.Skip(index).ToArray(), HelpRequested: false);
    }
}
