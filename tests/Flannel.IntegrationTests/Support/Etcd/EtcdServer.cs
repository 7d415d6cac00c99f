using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Flannel.Testing.Etcd;

/// <summary>How <see cref="EtcdServer.StartAsync"/> configures the etcd it starts.</summary>
public sealed record EtcdServerOptions
{
    /// <summary>Serve clients over TLS and require client certificates signed by a generated CA.</summary>
    public bool Tls { get; init; }

    /// <summary>Enable etcd authentication (user <c>root</c> with <see cref="EtcdServer.RootPassword"/>).</summary>
    public bool Auth { get; init; }

    /// <summary>The etcd executable; <c>etcd</c> on PATH by default (Debian's <c>etcd-server</c> package).</summary>
    public string EtcdPath { get; init; } = "etcd";

    /// <summary>The etcdctl executable; <c>etcdctl</c> on PATH by default (Debian's <c>etcd-client</c> package).</summary>
    public string EtcdctlPath { get; init; } = "etcdctl";

    /// <summary>How long to wait for the server to report healthy.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(20);
}

/// <summary>The result of one etcdctl run.</summary>
/// <param name="ExitCode">The process exit code.</param>
/// <param name="StandardOutput">Everything written to stdout.</param>
/// <param name="StandardError">Everything written to stderr.</param>
public sealed record EtcdctlResult(int ExitCode, string StandardOutput, string StandardError)
{
    /// <summary>Throws when etcdctl failed, with its stderr.</summary>
    public EtcdctlResult EnsureSuccess()
    {
        if (ExitCode != 0)
        {
            throw new InvalidOperationException($"etcdctl exited with {ExitCode}: {StandardError.Trim()} {StandardOutput.Trim()}");
        }

        return this;
    }
}

/// <summary>
/// A real, single-member etcd (Debian's <c>etcd-server</c>, 3.4) for tests: it listens on free 127.0.0.1
/// ports (client and peer), keeps its data on tmpfs (<c>/dev/shm</c>), and is stopped by PID and its data
/// deleted on <see cref="DisposeAsync"/>.
/// </summary>
/// <remarks>
/// <para>Modes: plain HTTP (default); TLS with client certificates (<see cref="EtcdServerOptions.Tls"/>; the
/// generated PEM files are in <see cref="Certificates"/>); authentication enabled
/// (<see cref="EtcdServerOptions.Auth"/>; user <c>root</c>, password <see cref="RootPassword"/>).</para>
/// <para><see cref="StopAsync"/> and <see cref="StartAgainAsync"/> stop and restart the same member on the
/// same ports and data, to test reconnection. <see cref="EtcdctlAsync"/> runs etcdctl (API v3) against it
/// with an argv array, adding the endpoint, TLS and auth flags.</para>
/// <para>Typical use: one server per test class through an xunit class fixture that calls
/// <c>Privileged.RequireExecutable("etcd")</c> first, so the tests skip where etcd is not installed and fail
/// under CI=true.</para>
/// </remarks>
public sealed class EtcdServer : IAsyncDisposable
{
    private static readonly ConcurrentDictionary<int, Process> Running = new();
    private readonly EtcdServerOptions _options;
    private readonly ConcurrentQueue<string> _log = new();
    private Process? _process;

    static EtcdServer()
    {
        // Last line of defence: never leave an etcd behind when the host exits without disposing, whether it
        // exits normally or dies of an unhandled exception (which skips ProcessExit).
        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
        AppDomain.CurrentDomain.UnhandledException += (_, _) => KillAll();
    }

    private static void KillAll()
    {
        foreach (Process p in Running.Values)
        {
            try
            {
                p.Kill();
                p.WaitForExit(2000);
            }
            catch (InvalidOperationException)
            {
            }
        }
    }

    private EtcdServer(EtcdServerOptions options, string name, string directory, int clientPort, int peerPort)
    {
        _options = options;
        Name = name;
        BaseDirectory = directory;
        ClientPort = clientPort;
        PeerPort = peerPort;
    }

    /// <summary>The member name (unique per server, e.g. <c>fnt-1a2b3c4d</c>).</summary>
    public string Name { get; }

    /// <summary>The folder holding the data directory and the certificates; deleted on dispose.</summary>
    public string BaseDirectory { get; }

    /// <summary>etcd's data directory.</summary>
    public string DataDirectory => Path.Combine(BaseDirectory, "data");

    /// <summary>The client port on 127.0.0.1.</summary>
    public int ClientPort { get; }

    /// <summary>The peer port on 127.0.0.1.</summary>
    public int PeerPort { get; }

    /// <summary>The client URL, e.g. <c>http://127.0.0.1:34567</c> (https in TLS mode).</summary>
    public string ClientUrl => string.Create(CultureInfo.InvariantCulture, $"{(IsTls ? "https" : "http")}://127.0.0.1:{ClientPort}");

    /// <summary>True when the server requires TLS with client certificates.</summary>
    public bool IsTls => _options.Tls;

    /// <summary>The generated certificates in TLS mode; otherwise null.</summary>
    public EtcdTestCertificates? Certificates { get; private set; }

    /// <summary>The password of user <c>root</c> in auth mode; otherwise null.</summary>
    public string? RootPassword { get; private set; }

    /// <summary>The etcd process ID while it runs.</summary>
    public int? ProcessId => _process is { HasExited: false } p ? p.Id : null;

    /// <summary>The last lines etcd wrote to stderr (for diagnostics).</summary>
    public string RecentLog => string.Join('\n', _log);

    /// <summary>Starts a new etcd and waits until it is healthy (and, in auth mode, until auth is enabled).</summary>
    public static async Task<EtcdServer> StartAsync(EtcdServerOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new EtcdServerOptions();
        Exception? last = null;

        // A free port can be taken between probing and etcd binding it; try a few times.
        for (int attempt = 0; attempt < 3; attempt++)
        {
            string name = "fnt-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
            string root = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
            string directory = Path.Combine(root, "flannel-etcd-" + name);
            Directory.CreateDirectory(directory);
            var server = new EtcdServer(options, name, directory, FreePort(), FreePort());
            try
            {
                if (options.Tls)
                {
                    server.Certificates = EtcdTestCertificates.Create(Path.Combine(directory, "tls"));
                }

                await server.LaunchAsync(cancellationToken).ConfigureAwait(false);
                if (options.Auth)
                {
                    await server.EnableAuthAsync(cancellationToken).ConfigureAwait(false);
                }

                return server;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                last = new InvalidOperationException($"etcd did not start: {ex.Message}\n{server.RecentLog}", ex);
                await server.DisposeAsync().ConfigureAwait(false);
            }
        }

        throw last!;
    }

    /// <summary>Stops etcd (SIGTERM, then SIGKILL after 5 s), keeping its data for <see cref="StartAgainAsync"/>.</summary>
    public async Task StopAsync()
    {
        Process? process = _process;
        _process = null;
        if (process is null)
        {
            return;
        }

        try
        {
            if (!process.HasExited)
            {
                _ = Tmds.Linux.LibC.kill(process.Id, Tmds.Linux.LibC.SIGTERM);
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                try
                {
                    await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    process.Kill();
                    await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            Running.TryRemove(process.Id, out _);
            process.Dispose();
        }
    }

    /// <summary>Starts the stopped member again on the same ports with the same data, and waits until healthy.</summary>
    public Task StartAgainAsync(CancellationToken cancellationToken = default)
    {
        if (_process is not null)
        {
            throw new InvalidOperationException("etcd is still running.");
        }

        return LaunchAsync(cancellationToken);
    }

    /// <summary>
    /// Runs <c>etcdctl</c> (ETCDCTL_API=3) against this server with <paramref name="arguments"/> as an argv
    /// array (no shell), adding <c>--endpoints</c>, the TLS files and root's credentials as needed.
    /// </summary>
    public Task<EtcdctlResult> EtcdctlAsync(params string[] arguments) => EtcdctlAsync(arguments, CancellationToken.None);

    /// <summary>Runs etcdctl as <see cref="EtcdctlAsync(string[])"/> does, with cancellation.</summary>
    public async Task<EtcdctlResult> EtcdctlAsync(IEnumerable<string> arguments, CancellationToken cancellationToken, bool asRoot = true)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var start = new ProcessStartInfo(_options.EtcdctlPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.Environment["ETCDCTL_API"] = "3";
        start.ArgumentList.Add("--endpoints=" + ClientUrl);
        start.ArgumentList.Add("--dial-timeout=3s");
        start.ArgumentList.Add("--command-timeout=5s");
        if (Certificates is { } tls)
        {
            start.ArgumentList.Add("--cacert=" + tls.CaFile);
            start.ArgumentList.Add("--cert=" + tls.ClientCertFile);
            start.ArgumentList.Add("--key=" + tls.ClientKeyFile);
        }

        if (asRoot && RootPassword is not null)
        {
            start.ArgumentList.Add("--user=root:" + RootPassword);
        }

        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(start) ?? throw new InvalidOperationException("etcdctl did not start.");
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        Task<string> stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(20));
        try
        {
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw;
        }

        return new EtcdctlResult(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }

    /// <summary>Adds a user that may read and write keys under <paramref name="prefix"/> only (auth mode).</summary>
    public async Task AddUserAsync(string user, string password, string prefix, CancellationToken cancellationToken = default)
    {
        string role = user + "-role";
        (await EtcdctlAsync(["user", "add", user + ":" + password, "--interactive=false"], cancellationToken).ConfigureAwait(false)).EnsureSuccess();
        (await EtcdctlAsync(["role", "add", role], cancellationToken).ConfigureAwait(false)).EnsureSuccess();
        (await EtcdctlAsync(["role", "grant-permission", role, "--prefix=true", "readwrite", prefix], cancellationToken).ConfigureAwait(false)).EnsureSuccess();
        (await EtcdctlAsync(["user", "grant-role", user, role], cancellationToken).ConfigureAwait(false)).EnsureSuccess();
    }

    /// <summary>Stops etcd by PID and deletes its data and certificates.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync().ConfigureAwait(false);
        }
        finally
        {
            try
            {
                Directory.Delete(BaseDirectory, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
            }
        }
    }

    private async Task LaunchAsync(CancellationToken cancellationToken)
    {
        string scheme = IsTls ? "https" : "http";
        string clientUrl = string.Create(CultureInfo.InvariantCulture, $"{scheme}://127.0.0.1:{ClientPort}");
        string peerUrl = string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{PeerPort}");
        var start = new ProcessStartInfo(_options.EtcdPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in new[]
        {
            "--name=" + Name,
            "--data-dir=" + DataDirectory,
            "--listen-client-urls=" + clientUrl,
            "--advertise-client-urls=" + clientUrl,
            "--listen-peer-urls=" + peerUrl,
            "--initial-advertise-peer-urls=" + peerUrl,
            "--initial-cluster=" + Name + "=" + peerUrl,
            "--initial-cluster-state=new",
            "--initial-cluster-token=" + Name,
            // Small values keep leader election and TTL checks fast for a one-member test cluster.
            "--heartbeat-interval=50",
            "--election-timeout=500",
            "--logger=zap",
            "--log-level=warn",
        })
        {
            start.ArgumentList.Add(argument);
        }

        if (Certificates is { } tls)
        {
            start.ArgumentList.Add("--cert-file=" + tls.ServerCertFile);
            start.ArgumentList.Add("--key-file=" + tls.ServerKeyFile);
            start.ArgumentList.Add("--trusted-ca-file=" + tls.CaFile);
            start.ArgumentList.Add("--client-cert-auth=true");
        }

        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Remember(e.Data);
        process.ErrorDataReceived += (_, e) => Remember(e.Data);
        if (!process.Start())
        {
            throw new InvalidOperationException("etcd did not start.");
        }

        Running[process.Id] = process;
        _process = process;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await WaitHealthyAsync(process, cancellationToken).ConfigureAwait(false);
    }

    private void Remember(string? line)
    {
        if (line is null)
        {
            return;
        }

        _log.Enqueue(line);
        while (_log.Count > 200 && _log.TryDequeue(out _))
        {
        }
    }

    private async Task WaitHealthyAsync(Process process, CancellationToken cancellationToken)
    {
        using var handler = new SocketsHttpHandler();
        if (Certificates is { } tls)
        {
            X509Certificate2 ca = X509CertificateLoader.LoadCertificateFromFile(tls.CaFile);
            handler.SslOptions.ClientCertificates = [X509Certificate2.CreateFromPemFile(tls.ClientCertFile, tls.ClientKeyFile)];
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
                {
                    return false;
                }

                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(ca);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(new X509Certificate2(certificate));
            };
        }

        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (process.HasExited)
            {
                throw new InvalidOperationException($"etcd exited with {process.ExitCode} during startup.");
            }

            try
            {
                string body = await http.GetStringAsync(new Uri(ClientUrl + "/health"), cancellationToken).ConfigureAwait(false);
                if (body.Contains("\"health\":\"true\"", StringComparison.Ordinal))
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }

            if (deadline.Elapsed > _options.StartTimeout)
            {
                throw new TimeoutException($"etcd at {ClientUrl} was not healthy after {_options.StartTimeout}.");
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task EnableAuthAsync(CancellationToken cancellationToken)
    {
        string password = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12));
        (await EtcdctlAsync(["user", "add", "root:" + password, "--interactive=false"], cancellationToken, asRoot: false).ConfigureAwait(false)).EnsureSuccess();
        (await EtcdctlAsync(["auth", "enable"], cancellationToken, asRoot: false).ConfigureAwait(false)).EnsureSuccess();
        RootPassword = password;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <inheritdoc/>
    public override string ToString() => new StringBuilder("etcd ").Append(Name).Append(" at ").Append(ClientUrl).ToString();
}
