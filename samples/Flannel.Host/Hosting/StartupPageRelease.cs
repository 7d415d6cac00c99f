using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Flannel.Host.Hosting;

/// <summary>
/// Once start-up is over, flanneld gives the kernel back the pages of code and read-only data it mapped in while
/// starting, so that its resident set holds what the steady state runs rather than everything start-up ever touched.
/// </summary>
/// <remarks>
/// <para>
/// Start-up runs most of flanneld's code once: the host and its dependency injection, the configuration, the store's
/// first list, admission and the first programming pass. Each page of code or read-only data it touched stayed
/// mapped, with the 64 KiB around it that the kernel maps on every fault (fault-around), although the steady state
/// (watch events, renewals, probes, resyncs) never runs most of it again. The pages belong to files (the flanneld
/// binary, libc, libm): <c>madvise(MADV_DONTNEED)</c> only unmaps them, the page cache keeps them, and whatever the
/// steady state still runs is mapped back by its next page fault, from the same file. That is always correct for a
/// page the process never wrote, which is why a mapping is released only when it is file-backed, private, not
/// writable and holds no anonymous page: a debugger's breakpoint or a text relocation makes a private copy of a page,
/// and unmapping that copy would lose it (without that check, a JIT test process, whose runtime writes into some of
/// its images' read-only pages, crashed).
/// </para>
/// <para>
/// What comes back is what the steady state runs, and the code layout keeps that small: <c>flanneld.order</c> puts the
/// functions the steady state calls first and together, ahead of those only start-up calls, so the steady state maps
/// back one dense region instead of every 64 KiB window that start-up and the steady state share. With 5,000 etcd peers
/// 80 s after convergence: 27.8–28.4 MiB instead of 30.0–30.4 (README, "Start-up pages released").
/// </para>
/// </remarks>
internal static partial class StartupPageRelease
{
    /// <summary>What a release did: the mappings released and the resident size they had.</summary>
    internal readonly record struct Result(int Mappings, long ResidentBytes, int Skipped);

    /// <summary>Releases the pages once <paramref name="snapshotProgrammed"/> completes, however it completes.</summary>
    public static void ReleaseWhen(Task snapshotProgrammed, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(snapshotProgrammed);
        ArgumentNullException.ThrowIfNull(logger);
        snapshotProgrammed.ContinueWith(
            static (_, state) => Release((ILogger)state!),
            logger,
            CancellationToken.None,
            TaskContinuationOptions.None,
            TaskScheduler.Default);
    }

    /// <summary>Releases the pages of every read-only file mapping of this process that holds no private copy.</summary>
    public static Result Release(ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        Result result = default;
        try
        {
            result = ReleaseMappings(File.ReadAllText("/proc/self/smaps"));
            if (logger.IsEnabled(LogLevel.Debug))
            {
                LogReleased(logger, result.ResidentBytes >> 10, result.Mappings, result.Skipped);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            // No /proc (an unusual container), or an smaps line this parser does not know: nothing is released (or
            // only the mappings before that line), and nothing else depends on it.
            LogNotReleased(logger, ex.Message);
        }

        return result;
    }

    /// <summary>Parses <paramref name="smaps"/> (<c>/proc/self/smaps</c>) and releases the mappings it allows.</summary>
    internal static Result ReleaseMappings(string smaps)
    {
        int mappings = 0;
        int skipped = 0;
        long resident = 0;
        foreach (Mapping mapping in Parse(smaps))
        {
            if (!mapping.IsReadOnlyFile)
            {
                continue;
            }

            if (mapping.AnonymousKiB != 0)
            {
                skipped++;
                continue;
            }

            if (Advise(mapping.Start, mapping.End - mapping.Start) == 0)
            {
                mappings++;
                resident += mapping.ResidentKiB << 10;
            }
        }

        return new Result(mappings, resident, skipped);
    }

    /// <summary>The mappings <paramref name="smaps"/> lists, with the fields the release decides on.</summary>
    internal static List<Mapping> Parse(string smaps)
    {
        var mappings = new List<Mapping>();
        Mapping? current = null;
        foreach (ReadOnlySpan<char> line in smaps.AsSpan().EnumerateLines())
        {
            if (line.Length == 0)
            {
                continue;
            }

            // A mapping's header: "start-end perms offset dev inode [path]"; its fields follow as "Name: value kB".
            int dash = line.IndexOf('-');
            int space = line.IndexOf(' ');
            if (dash > 0 && space > dash && !line[..space].Contains(':'))
            {
                if (current is { } done)
                {
                    mappings.Add(done);
                }

                current = ParseHeader(line, dash, space);
                continue;
            }

            if (current is not { } mapping)
            {
                continue;
            }

            if (line.StartsWith("Rss:", StringComparison.Ordinal))
            {
                current = mapping with { ResidentKiB = ParseKiB(line) };
            }
            else if (line.StartsWith("Anonymous:", StringComparison.Ordinal))
            {
                current = mapping with { AnonymousKiB = ParseKiB(line) };
            }
        }

        if (current is { } last)
        {
            mappings.Add(last);
        }

        return mappings;
    }

    private static Mapping ParseHeader(ReadOnlySpan<char> line, int dash, int space)
    {
        if (!ulong.TryParse(line[..dash], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong start)
            || !ulong.TryParse(line[(dash + 1)..space], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong end))
        {
            throw new FormatException($"smaps: cannot read the address range of \"{line}\"");
        }

        ReadOnlySpan<char> rest = line[(space + 1)..];
        ReadOnlySpan<char> permissions = rest[..Math.Min(4, rest.Length)];

        // The path is the sixth field; it starts with '/' for a file ([heap], [stack], [vdso] and anonymous mappings
        // have none). A file deleted since it was mapped is left alone.
        int slash = rest.IndexOf('/');
        bool file = slash >= 0 && !rest.EndsWith(" (deleted)", StringComparison.Ordinal);
        bool readOnlyPrivate = permissions.Length == 4 && permissions[0] == 'r' && permissions[1] == '-' && permissions[3] == 'p';
        return new Mapping(start, end, file && readOnlyPrivate, ResidentKiB: 0, AnonymousKiB: -1);
    }

    private static long ParseKiB(ReadOnlySpan<char> line)
    {
        ReadOnlySpan<char> value = line[(line.IndexOf(':') + 1)..].Trim();
        int unit = value.IndexOf(' ');
        return long.TryParse(unit < 0 ? value : value[..unit], NumberStyles.None, CultureInfo.InvariantCulture, out long kib)
            ? kib
            : throw new FormatException($"smaps: cannot read the size in \"{line}\"");
    }

    private static unsafe int Advise(ulong start, ulong length) =>
        Tmds.Linux.LibC.madvise((void*)start, (Tmds.Linux.size_t)length, Tmds.Linux.LibC.MADV_DONTNEED);

    /// <summary>One mapping: its address range, whether it is a read-only private file mapping, and its sizes.</summary>
    internal readonly record struct Mapping(ulong Start, ulong End, bool IsReadOnlyFile, long ResidentKiB, long AnonymousKiB);

    [LoggerMessage(Level = LogLevel.Debug, Message = "start-up: released {ResidentKiB} KiB of code and read-only data pages from {Mappings} mappings ({Skipped} with private copies kept)")]
    private static partial void LogReleased(ILogger logger, long residentKiB, int mappings, int skipped);

    [LoggerMessage(Level = LogLevel.Debug, Message = "start-up: code and read-only data pages not released: {Reason}")]
    private static partial void LogNotReleased(ILogger logger, string reason);
}
