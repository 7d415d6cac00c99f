using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using static Tmds.Linux.LibC;

namespace Flannel.Agent.Status;

/// <summary>Where and how the agent serves its status (<c>--status-socket</c> in flanneld).</summary>
public sealed class StatusSocketOptions
{
    /// <summary>flanneld's default socket path.</summary>
    public const string DefaultPath = "/run/flannel/flannel.sock";

    /// <summary>The unix socket's path; empty disables the socket. Default <see cref="DefaultPath"/>.</summary>
    public string Path { get; set; } = DefaultPath;

    /// <summary>Connections served at once; more are told the agent is busy. Default 8.</summary>
    public int MaxConnections { get; set; } = 8;

    /// <summary>How long a client may take to send its request line. Default 5 s.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// Serves an agent's <see cref="FabricStatus"/> as JSON on a unix socket, created with mode 0600 so that only the
/// agent's user (root) can read it.
/// </summary>
/// <remarks>
/// <para>
/// The protocol is one request line and one answer: the client sends <c>status\n</c> and reads the JSON document
/// (<see cref="FabricStatusJsonContext"/>) until the server closes the connection. Anything else — an unknown
/// request, a line longer than <see cref="MaxRequestLength"/> bytes, bytes that are not text, or no complete line
/// within <see cref="StatusSocketOptions.RequestTimeout"/> — gets <c>{"error":"…"}</c> and the connection is
/// closed. No request, however malformed, stops the server or the agent; bad requests are logged at debug level
/// only, so a client cannot flood the log.
/// </para>
/// <para>
/// A stale socket file left by a crashed agent is replaced; a live one (another agent answers on it) is an error,
/// as is a path that exists and is not a socket.
/// </para>
/// </remarks>
public sealed partial class StatusSocketServer : IDisposable
{
    /// <summary>The longest request line accepted, newline included.</summary>
    public const int MaxRequestLength = 1024;

    private const int SocketFileMode = 0x180; // 0600

    private readonly IFabricStatus _status;
    private readonly StatusSocketOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;
    private readonly SemaphoreSlim _slots;
    private long _served;
    private long _rejected;

    /// <summary>Creates the server; <see cref="RunAsync"/> binds and serves.</summary>
    public StatusSocketServer(IFabricStatus status, StatusSocketOptions options, ILogger logger, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(status);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentException.ThrowIfNullOrEmpty(options.Path);
        _status = status;
        _options = options;
        _logger = logger;
        _timeProvider = timeProvider ?? TimeProvider.System;
        _slots = new SemaphoreSlim(Math.Max(1, options.MaxConnections));
    }

    /// <summary>Requests answered with a status document.</summary>
    public long Served => Interlocked.Read(ref _served);

    /// <summary>Requests answered with an error.</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <inheritdoc />
    public void Dispose() => _slots.Dispose();

    /// <summary>Binds the socket (replacing a stale one) and serves until cancelled; removes the socket file on the way out.</summary>
    /// <exception cref="InvalidOperationException">Another process serves the path, or it exists and is not a socket.</exception>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using Socket listener = Bind(_options.Path);
        LogListening(_logger, _status.Name, _options.Path);
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                Socket client;
                try
                {
                    client = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    break;
                }
                catch (SocketException e)
                {
                    // EMFILE, ENOBUFS…: the agent goes on; try again shortly.
                    LogAcceptFailed(_logger, _status.Name, e.Message);
                    await Task.Delay(TimeSpan.FromMilliseconds(100), _timeProvider, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                _ = ServeAsync(client, cancellationToken);
            }
        }
        finally
        {
            TryDelete(_options.Path);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken cancellationToken)
    {
        using (client)
        {
            try
            {
                if (!await _slots.WaitAsync(0, cancellationToken).ConfigureAwait(false))
                {
                    await RejectAsync(client, "busy: too many status requests at once, try again", cancellationToken).ConfigureAwait(false);
                    return;
                }

                try
                {
                    await ServeOneAsync(client, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    _slots.Release();
                }
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
            {
                // The client went away or the agent is stopping: nothing to answer.
            }
            catch (Exception e)
            {
                // Building the status failed: tell the client, keep serving.
                LogStatusFailed(_logger, _status.Name, e);
                await RejectAsync(client, $"the agent could not build its status: {e.Message}", cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task ServeOneAsync(Socket client, CancellationToken cancellationToken)
    {
        (string? request, string? problem) = await ReadRequestLineAsync(client, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            LogBadRequest(_logger, _status.Name, problem);
            await RejectAsync(client, problem, cancellationToken).ConfigureAwait(false);
            return;
        }

        if (!string.Equals(request, "status", StringComparison.Ordinal))
        {
            string text = $"unknown request \"{Printable(request!)}\": send \"status\" and a newline";
            LogBadRequest(_logger, _status.Name, text);
            await RejectAsync(client, text, cancellationToken).ConfigureAwait(false);
            return;
        }

        FabricStatus status = _status.GetStatus();
        byte[] body = JsonSerializer.SerializeToUtf8Bytes(status, FabricStatusJsonContext.Default.FabricStatus);
        await client.SendAsync(body, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        await client.SendAsync("\n"u8.ToArray(), SocketFlags.None, cancellationToken).ConfigureAwait(false);
        client.Shutdown(SocketShutdown.Send);
        Interlocked.Increment(ref _served);
    }

    /// <summary>Reads one line; returns it, or the reason it is refused.</summary>
    private async Task<(string? Request, string? Problem)> ReadRequestLineAsync(Socket client, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[MaxRequestLength];
        int length = 0;
        using var timeout = new CancellationTokenSource(_options.RequestTimeout, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            while (true)
            {
                int newline = Array.IndexOf(buffer, (byte)'\n', 0, length);
                if (newline >= 0)
                {
                    return Decode(buffer.AsSpan(0, newline));
                }

                if (length == buffer.Length)
                {
                    return (null, $"request too long: a request is one line of at most {MaxRequestLength} bytes");
                }

                int read = await client.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, linked.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    // EOF without a newline: accept a complete word (e.g. `printf status | socat`), refuse nothing at all.
                    return length == 0 ? (null, "empty request: send \"status\" and a newline") : Decode(buffer.AsSpan(0, length));
                }

                length += read;
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return (null, $"no complete request line within {_options.RequestTimeout.TotalSeconds:0.#} s");
        }
    }

    private static (string? Request, string? Problem) Decode(ReadOnlySpan<byte> line)
    {
        if (line.Length > 0 && line[^1] == (byte)'\r')
        {
            line = line[..^1];
        }

        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(line);
        }
        catch (DecoderFallbackException)
        {
            return (null, "the request is not UTF-8 text");
        }

        if (text.Any(char.IsControl))
        {
            return (null, $"the request contains control characters: \"{Printable(text)}\"");
        }

        return (text.Trim(), null);
    }

    private async Task RejectAsync(Socket client, string error, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _rejected);
        try
        {
            byte[] body = JsonSerializer.SerializeToUtf8Bytes(new StatusError(error), FabricStatusJsonContext.Default.StatusError);
            using var timeout = new CancellationTokenSource(_options.RequestTimeout, _timeProvider);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
            await client.SendAsync(body, SocketFlags.None, linked.Token).ConfigureAwait(false);
            await client.SendAsync("\n"u8.ToArray(), SocketFlags.None, linked.Token).ConfigureAwait(false);
            client.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The client is gone; the error had nowhere to go.
        }
    }

    /// <summary>At most 64 characters of <paramref name="text"/>, control characters escaped, for error texts.</summary>
    private static string Printable(string text)
    {
        var builder = new StringBuilder();
        foreach (char c in text.Length > 64 ? text[..64] : text)
        {
            builder.Append(char.IsControl(c) || c == '"' || c == '\\' ? $"\\u{(int)c:x4}" : c);
        }

        return text.Length > 64 ? builder.Append('…').ToString() : builder.ToString();
    }

    private static unsafe Socket Bind(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("The status socket needs Linux.");
        }

        string? directory = System.IO.Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        ReplaceStaleSocket(path);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            // Linux creates the socket file with the socket inode's mode (less the umask), so setting it before bind
            // leaves no moment in which the file is readable by others; the chmod after bind covers other kernels.
            _ = fchmod((int)socket.Handle, SocketFileMode);
            socket.Bind(new UnixDomainSocketEndPoint(path));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            socket.Listen(16);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static void ReplaceStaleSocket(string path)
    {
        FileKind kind = Lstat(path);
        if (kind == FileKind.Missing)
        {
            return;
        }

        if (kind != FileKind.Socket)
        {
            throw new InvalidOperationException($"status socket path '{path}' exists and is not a socket; remove it or choose another --status-socket");
        }

        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException)
        {
            File.Delete(path); // nobody listens: left over from a process that died
            return;
        }

        throw new InvalidOperationException($"another process already serves the status socket '{path}'");
    }

    private enum FileKind
    {
        Missing,
        Socket,
        Other,
    }

    private static unsafe FileKind Lstat(string path)
    {
        // The file type (S_IFSOCK) comes from lstat: the File APIs do not expose it.
        byte[] bytes = Encoding.UTF8.GetBytes(path + "\0");
        Tmds.Linux.stat st;
        fixed (byte* p = bytes)
        {
            if (lstat(p, &st) != 0)
            {
                return FileKind.Missing;
            }
        }

        return (st.st_mode & S_IFMT) == S_IFSOCK ? FileKind.Socket : FileKind.Other;
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (Lstat(path) == FileKind.Socket)
            {
                File.Delete(path);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    [LoggerMessage(EventId = 8100, Level = LogLevel.Information, Message = "{Agent}: serving the fabric status on unix socket {Path} (flanneld status)")]
    private static partial void LogListening(ILogger logger, string agent, string path);

    [LoggerMessage(EventId = 8101, Level = LogLevel.Debug, Message = "{Agent}: status socket request refused: {Problem}")]
    private static partial void LogBadRequest(ILogger logger, string agent, string problem);

    [LoggerMessage(EventId = 8102, Level = LogLevel.Warning, Message = "{Agent}: status socket accept failed: {Error}")]
    private static partial void LogAcceptFailed(ILogger logger, string agent, string error);

    [LoggerMessage(EventId = 8103, Level = LogLevel.Error, Message = "{Agent}: building the fabric status failed")]
    private static partial void LogStatusFailed(ILogger logger, string agent, Exception exception);
}
