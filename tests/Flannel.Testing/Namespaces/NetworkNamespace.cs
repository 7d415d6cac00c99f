using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Flannel.Testing.Namespaces;

/// <summary>
/// A throwaway network namespace for kernel tests: created with <c>ip netns add fnt-&lt;8 hex&gt;</c> (a unique name,
/// so parallel tests and parallel engineers never collide), always deleted on dispose, even when the test failed.
/// </summary>
/// <remarks>
/// <para>
/// Commands run inside it through <c>ip netns exec NAME argv…</c> with an argv array — never a shell string — so
/// nothing a test passes is ever interpreted by a shell. Use <see cref="RunAsync"/> to see the exit code and the
/// output, <see cref="RunCheckedAsync"/> when failure should fail the test, and <see cref="IpJsonAsync"/> to read
/// <c>ip -j</c> / <c>bridge -j</c> output as JSON.
/// </para>
/// <para>
/// Typical use (the caller must be root; gate the test on that first):
/// <code>
/// await using var ns = await NetworkNamespace.CreateAsync();
/// await ns.RunCheckedAsync("ip", "link", "add", "veth0", "type", "veth", "peer", "name", "veth1");
/// JsonElement links = await ns.IpJsonAsync("ip", "-d", "link", "show", "veth0");
/// await using RtNetlink netlink = RtNetlink.OpenInNamespace(ns.Name);
/// </code>
/// Deleting the namespace destroys every device in it (and a veth's peer elsewhere), so tests need no other
/// cleanup. Nothing here touches the root namespace.
/// </para>
/// </remarks>
public sealed class NetworkNamespace : IAsyncDisposable
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);
    private int _disposed;

    private NetworkNamespace(string name)
    {
        Name = name;
    }

    /// <summary>The namespace name, e.g. <c>fnt-1a2b3c4d</c>.</summary>
    public string Name { get; }

    /// <summary>The bind-mounted namespace file, <c>/var/run/netns/NAME</c>.</summary>
    public string Path => "/var/run/netns/" + Name;

    /// <summary>
    /// Creates a namespace named <c>PREFIX-&lt;8 random hex&gt;</c> and brings its loopback up.
    /// </summary>
    /// <param name="prefix">Name prefix; keep it short (names are at most 255 bytes, but <c>ip</c> output is easier to read).</param>
    public static async Task<NetworkNamespace> CreateAsync(string prefix = "fnt")
    {
        CancellationToken cancellationToken = CancellationToken.None;
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        string name = $"{prefix}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
        ProcessResult created = await RunProcessAsync(["ip", "netns", "add", name], cancellationToken).ConfigureAwait(false);
        if (created.ExitCode != 0)
        {
            throw new InvalidOperationException($"ip netns add {name} failed ({created.ExitCode}): {created.StandardError.Trim()}");
        }

        var ns = new NetworkNamespace(name);
        try
        {
            // Loopback up matters: with lo down the kernel rejects onlink gateways ("Nexthop has invalid gateway").
            await ns.RunCheckedAsync("ip", "link", "set", "lo", "up").ConfigureAwait(false);
        }
        catch
        {
            await ns.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return ns;
    }

    /// <summary>
    /// Runs <paramref name="argv"/> inside the namespace and returns its exit code and output, with a 60-second
    /// timeout.
    /// </summary>
    public Task<ProcessResult> RunAsync(params string[] argv)
    {
        ArgumentNullException.ThrowIfNull(argv);
        if (argv.Length == 0)
        {
            throw new ArgumentException("Give at least the program to run.", nameof(argv));
        }

        return RunProcessAsync(["ip", "netns", "exec", Name, .. argv], CancellationToken.None);
    }

    /// <summary>
    /// Runs <paramref name="argv"/> inside the namespace and returns its stdout; a non-zero exit throws with the
    /// command and its stderr.
    /// </summary>
    public async Task<string> RunCheckedAsync(params string[] argv)
    {
        ProcessResult result = await RunAsync(argv).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"`{string.Join(' ', argv)}` in {Name} exited {result.ExitCode}: {result.StandardError.Trim()} {result.StandardOutput.Trim()}");
        }

        return result.StandardOutput;
    }

    /// <summary>
    /// Runs an iproute2 command with <c>-j</c> inserted after the program name (<c>ip -j …</c>,
    /// <c>bridge -j …</c>) and parses its JSON output. An empty output parses as an empty array.
    /// </summary>
    public async Task<JsonElement> IpJsonAsync(params string[] argv)
    {
        ArgumentNullException.ThrowIfNull(argv);
        if (argv.Length == 0)
        {
            throw new ArgumentException("Give the program (ip or bridge) and its arguments.", nameof(argv));
        }

        string output = await RunCheckedAsync([argv[0], "-j", .. argv[1..]]).ConfigureAwait(false);
        if (string.IsNullOrWhiteSpace(output))
        {
            return JsonDocument.Parse("[]").RootElement.Clone();
        }

        using JsonDocument document = JsonDocument.Parse(output);
        return document.RootElement.Clone();
    }

    /// <summary>
    /// Creates a veth pair with <paramref name="localName"/> here and <paramref name="peerName"/> in
    /// <paramref name="peer"/>, assigns the addresses (CIDR text, e.g. <c>198.18.0.1/24</c>) and sets both ends up.
    /// </summary>
    public async Task ConnectAsync(NetworkNamespace peer, string localName, string localAddress, string peerName, string peerAddress, int mtu = 1500)
    {
        ArgumentNullException.ThrowIfNull(peer);
        string mtuText = mtu.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await RunCheckedAsync("ip", "link", "add", localName, "mtu", mtuText, "type", "veth", "peer", "name", peerName, "mtu", mtuText, "netns", peer.Name).ConfigureAwait(false);
        await RunCheckedAsync("ip", "addr", "add", localAddress, "dev", localName).ConfigureAwait(false);
        await RunCheckedAsync("ip", "link", "set", localName, "up").ConfigureAwait(false);
        await peer.RunCheckedAsync("ip", "addr", "add", peerAddress, "dev", peerName).ConfigureAwait(false);
        await peer.RunCheckedAsync("ip", "link", "set", peerName, "up").ConfigureAwait(false);
    }

    /// <summary>Deletes the namespace (and with it every device inside). Safe to call twice.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await StopProcessesInsideAsync().ConfigureAwait(false);
        ProcessResult deleted = await RunProcessAsync(["ip", "netns", "del", Name], CancellationToken.None).ConfigureAwait(false);
        if (deleted.ExitCode != 0 && File.Exists(Path))
        {
            throw new InvalidOperationException($"ip netns del {Name} failed ({deleted.ExitCode}): {deleted.StandardError.Trim()}");
        }
    }

    /// <summary>
    /// Stops (SIGTERM, then SIGKILL after 5 s) every process still living in the namespace: daemons a test started
    /// there that detached from it, such as wireguard-go, which would otherwise outlive the namespace (it holds it).
    /// </summary>
    private async Task StopProcessesInsideAsync()
    {
        ProcessResult pids = await RunProcessAsync(["ip", "netns", "pids", Name], CancellationToken.None).ConfigureAwait(false);
        var alive = new List<int>();
        foreach (string line in pids.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (int.TryParse(line, System.Globalization.CultureInfo.InvariantCulture, out int pid) && pid != Environment.ProcessId)
            {
                _ = Tmds.Linux.LibC.kill(pid, Tmds.Linux.LibC.SIGTERM);
                alive.Add(pid);
            }
        }

        long deadline = Environment.TickCount64 + 5000;
        while (alive.Count > 0)
        {
            alive.RemoveAll(static pid => Tmds.Linux.LibC.kill(pid, 0) != 0);
            if (Environment.TickCount64 > deadline)
            {
                alive.ForEach(static pid => _ = Tmds.Linux.LibC.kill(pid, Tmds.Linux.LibC.SIGKILL));
                break;
            }

            await Task.Delay(50).ConfigureAwait(false);
        }
    }

    /// <summary>Runs a program (argv[0] looked up on PATH) and captures its output. Never uses a shell.</summary>
    public static async Task<ProcessResult> RunProcessAsync(string[] argv, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(argv);
        var start = new ProcessStartInfo(FindExecutable(argv[0]) ?? argv[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (string argument in argv.AsSpan(1))
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {argv[0]}.");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(CommandTimeout);
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        Task<string> stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return new ProcessResult(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }

    /// <summary>Finds an executable on PATH, then in /usr/sbin and /sbin (or checks an absolute path); null when absent.</summary>
    public static string? FindExecutable(string executable)
    {
        ArgumentException.ThrowIfNullOrEmpty(executable);
        if (System.IO.Path.IsPathRooted(executable))
        {
            return File.Exists(executable) ? executable : null;
        }

        string path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        foreach (string dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/sbin", "/sbin"]))
        {
            string candidate = System.IO.Path.Combine(dir, executable);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}

/// <summary>A finished process: its exit code and its captured output.</summary>
/// <param name="ExitCode">The exit code.</param>
/// <param name="StandardOutput">Everything written to stdout.</param>
/// <param name="StandardError">Everything written to stderr.</param>
public sealed record ProcessResult(int ExitCode, string StandardOutput, string StandardError);
