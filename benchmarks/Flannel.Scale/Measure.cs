using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Flannel.Scale;

/// <summary>Process figures from /proc, and small process helpers. No shell anywhere.</summary>
internal static class Measure
{
    private static readonly long ClockTicksPerSecond = 100; // USER_HZ on Linux

    /// <summary>VmRSS and VmHWM (peak) in KiB.</summary>
    public static (long Rss, long Peak) Memory(int pid)
    {
        long rss = 0, peak = 0;
        foreach (string line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                rss = Kib(line);
            }
            else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                peak = Kib(line);
            }
        }

        return (rss, peak);

        static long Kib(string line) => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }

    /// <summary>VmRSS split into anonymous memory (heaps, stacks) and file-backed pages (the mapped binary, libraries), in KiB.</summary>
    public static (long Anon, long File) RssParts(int pid)
    {
        long anon = 0, file = 0;
        foreach (string line in System.IO.File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("RssAnon:", StringComparison.Ordinal))
            {
                anon = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("RssFile:", StringComparison.Ordinal))
            {
                file = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            }
        }

        return (anon, file);
    }

    /// <summary>With <c>--late SECONDS</c>: how long after the steady figure the RSS is read again; zero: not read.</summary>
    public static TimeSpan LateReading { get; set; }

    /// <summary>Where <see cref="GcDumpAsync"/> writes heap dumps (<c>--gcdump DIR</c>); null: no dumps.</summary>
    public static string? GcDumpDirectory { get; set; }

    /// <summary>
    /// With <c>--gcdump DIR</c>: a heap dump of a JIT flanneld (dotnet-gcdump on PATH or in ~/.dotnet/tools) and its
    /// report by type. Only after the phase's figures are read: collecting forces a full, compacting GC.
    /// </summary>
    public static async Task GcDumpAsync(int pid, string name)
    {
        if (GcDumpDirectory is null)
        {
            return;
        }

        string tool = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dotnet", "tools", "dotnet-gcdump");
        tool = File.Exists(tool) ? tool : "dotnet-gcdump";
        string dump = Path.Combine(GcDumpDirectory, $"{name}.gcdump");
        try
        {
            await RunAsync(tool, "collect", "-p", pid.ToString(CultureInfo.InvariantCulture), "-o", dump);
            await File.WriteAllTextAsync(Path.ChangeExtension(dump, ".txt"), await RunAsync(tool, "report", dump));
            Console.WriteLine($"heap dump {dump} (report by type next to it)");
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            Console.WriteLine($"no heap dump of {name}: {e.Message.Split('\n')[0]}");
        }
    }

    /// <summary>Resets VmHWM to the current RSS (<c>clear_refs</c> 5), so the next peak is one phase's own.</summary>
    public static void ResetPeak(int pid) => File.WriteAllText($"/proc/{pid}/clear_refs", "5");

    /// <summary>User + system CPU time of the whole process, all threads (including exited ones).</summary>
    public static TimeSpan CpuTime(int pid)
    {
        (TimeSpan user, TimeSpan system) = CpuTimes(pid);
        return user + system;
    }

    /// <summary>The process's CPU time in user space and in the kernel (utime, stime), at the kernel's 10 ms tick.</summary>
    public static (TimeSpan User, TimeSpan System) CpuTimes(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (Ticks(fields[11]), Ticks(fields[12]));

        static TimeSpan Ticks(string field) => TimeSpan.FromSeconds((double)long.Parse(field, CultureInfo.InvariantCulture) / ClockTicksPerSecond);
    }

    public static Process Start(string file, IEnumerable<string> args, string log, IDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        Process process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {file}");
        var writer = new StreamWriter(log, append: true) { AutoFlush = true };
        // The log closes when both streams have ended, not when the process exits: a child that outlives it (a
        // measuring wrapper's background job) can keep a stream open, and lines can still be queued after Exited.
        int openStreams = 2;
        void Write(string? line)
        {
            lock (writer)
            {
                if (line is not null)
                {
                    writer.WriteLine(line);
                }
                else if (--openStreams == 0)
                {
                    writer.Dispose();
                }
            }
        }

        process.OutputDataReceived += (_, e) => Write(e.Data);
        process.ErrorDataReceived += (_, e) => Write(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    public static async Task StopAsync(Process process)
    {
        if (!process.HasExited)
        {
            _ = Tmds.Linux.LibC.kill(process.Id, Tmds.Linux.LibC.SIGTERM);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
        }
    }

    /// <summary>Runs a command to completion; throws with its stderr when it fails.</summary>
    public static async Task<string> RunAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)}: exit {process.ExitCode}: {await stderr}");
        }

        return await stdout;
    }

    public static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what, Func<string>? detail = null)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"timed out after {timeout.TotalSeconds} s waiting for {what}{(detail is null ? "" : "\n" + detail())}");
            }

            await Task.Delay(5);
        }
    }

    public static double Median(IEnumerable<double> values)
    {
        double[] sorted = [.. values.Order()];
        return sorted.Length == 0 ? double.NaN : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    public static string Mib(long kib) => (kib / 1024.0).ToString("0.0", CultureInfo.InvariantCulture);

    public static string Tail(string path, int lines = 30) =>
        File.Exists(path) ? string.Join('\n', File.ReadLines(path).TakeLast(lines)) : "(no log)";
}

/// <summary>A flanneld binary under test, with the extra flags (<c>--arg</c>) and environment (<c>--env</c>) it runs with.</summary>
internal sealed record Flanneld(string Label, string Path)
{
    public List<string> ExtraArgs { get; } = [];

    public Dictionary<string, string> Environment { get; } = [];

    /// <summary>The flags the benchmark needs, then the extra ones.</summary>
    public IEnumerable<string> Args(IEnumerable<string> required) => required.Concat(ExtraArgs);

    /// <summary>The benchmark's own variables, then the extra ones.</summary>
    public Dictionary<string, string> Env(IDictionary<string, string>? required = null)
    {
        Dictionary<string, string> all = new(required ?? new Dictionary<string, string>());
        foreach ((string key, string value) in Environment)
        {
            all[key] = value;
        }

        return all;
    }

    public static Flanneld Parse(string text)
    {
        int equals = text.IndexOf('=', StringComparison.Ordinal);
        return equals > 0 ? new Flanneld(text[..equals], text[(equals + 1)..]) : new Flanneld(System.IO.Path.GetFileName(System.IO.Path.GetDirectoryName(text)) ?? text, text);
    }
}

internal static class Peers
{
    /// <summary>The i-th peer (0-based): subnet 10.(1 + i / 256).(i % 256).0/24, public IP 198.18.(i / 250).(i % 250 + 2), a MAC.</summary>
    public static (string Subnet, string Network, string PublicIP, string Mac) Of(int i)
    {
        string network = string.Create(CultureInfo.InvariantCulture, $"10.{1 + (i / 256)}.{i % 256}.0");
        return ($"{network}/24", network, string.Create(CultureInfo.InvariantCulture, $"198.18.{1 + (i / 250)}.{(i % 250) + 2}"),
            string.Create(CultureInfo.InvariantCulture, $"0e:00:{(i >> 16) & 0xff:x2}:{(i >> 8) & 0xff:x2}:{i & 0xff:x2}:01"));
    }

    public static string BackendData(string mac) => $"{{\"VNI\":1,\"VtepMAC\":\"{mac}\"}}";

    /// <summary>
    /// What iproute2 needs to program the same objects flanneld does, as the kernel benchmark does it: <c>bridge -batch</c>
    /// for the FDB entries, <c>ip -batch</c> for the neighbours and onlink routes.
    /// </summary>
    public static (string Ip, string Bridge) IpBatch(int count, string device)
    {
        var ip = new StringBuilder();
        var bridge = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            (string subnet, string network, string publicIP, string mac) = Of(i);
            ip.Append("neigh replace ").Append(network).Append(" lladdr ").Append(mac).Append(" dev ").Append(device).Append(" nud permanent\n");
            bridge.Append("fdb replace ").Append(mac).Append(" dev ").Append(device).Append(" dst ").Append(publicIP).Append(" self permanent\n");
            ip.Append("route replace ").Append(subnet).Append(" via ").Append(network).Append(" dev ").Append(device).Append(" onlink\n");
        }

        return (ip.ToString(), bridge.ToString());
    }
}
