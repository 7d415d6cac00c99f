using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Flannel.Agent.Probing;
using Flannel.Agent.Status;
using Flannel.Backends;
using Flannel.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Flannel.Agent.Tests.Status;

/// <summary>
/// The status socket over a real unix socket in a temp directory: the document, the file mode, and hostile
/// clients (garbage, oversized, slow, too many at once), none of which stops the server.
/// </summary>
public sealed class StatusSocketTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("flannel-status-").FullName;
    private readonly FakeStatus _status = new();
    private readonly CancellationTokenSource _stop = new();
    private StatusSocketServer _server = null!;
    private Task _serving = Task.CompletedTask;

    private string SocketPath => Path.Combine(_directory, "run", "flannel.sock");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync()
    {
        _server = new StatusSocketServer(_status, new StatusSocketOptions { Path = SocketPath, MaxConnections = 2, RequestTimeout = TimeSpan.FromMilliseconds(300) }, NullLogger.Instance);
        _serving = _server.RunAsync(_stop.Token);
        return WaitForSocketAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _serving;
        _server.Dispose();
        _stop.Dispose();
        Assert.False(File.Exists(SocketPath), "the socket file is removed on the way out");
        Directory.Delete(_directory, recursive: true);
    }

    private async ValueTask WaitForSocketAsync()
    {
        for (int i = 0; i < 500 && !File.Exists(SocketPath); i++)
        {
            Assert.False(_serving.IsCompleted, _serving.Exception?.ToString());
            await Task.Delay(5);
        }
    }

    private sealed class FakeStatus : IFabricStatus
    {
        public string Name => "node1";

        public Func<FabricStatus> Build { get; set; } = Sample;

        public FabricStatus GetStatus() => Build();

        public static FabricStatus Sample()
        {
            PeerStatus[] peers =
            [
                new PeerStatus
                {
                    Lease = new LeaseStatus { Key = "10.244.2.0-24", Subnet = "10.244.2.0/24", PublicIP = "198.18.0.12", BackendType = "vxlan", BackendData = JsonDocument.Parse("""{"VNI":1,"VtepMAC":"0e:00:00:00:00:02"}""").RootElement },
                    Health = PeerHealth.OverlayOnlyFailure,
                    Kernel = new PeerKernelStatus(PeerKernelState.Programmed),
                    Overlay = new PathStatus { State = Reachability.Unreachable, Target = "10.244.2.0", Source = "10.244.1.0", Last = "no reply", LossPercent = 100, Samples = 3, Sent = 3 },
                    Underlay = new PathStatus { State = Reachability.Reachable, Target = "198.18.0.12", RttMs = new RttStatus(0.2, 0.1, 0.2, 0.3), LossPercent = 0, Samples = 3, Sent = 3, Received = 3 },
                },
            ];
            return new FabricStatus
            {
                GeneratedAt = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero),
                Node = new NodeStatus { Name = "node1", Ready = true, Backend = "vxlan", Device = "flannel.1", Mtu = 1450, Store = new StoreStatus(true, null), Lease = new LeaseStatus { Key = "10.244.1.0-24", Subnet = "10.244.1.0/24" } },
                Probes = new ProbeSettings(60, 1000, 0.03),
                Peers = peers,
                Summary = FabricSummary.From(peers),
            };
        }
    }

    private async Task<string> RequestAsync(byte[] request, bool closeWrite = false, int delayMs = 0)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), Ct);
        if (delayMs > 0)
        {
            await Task.Delay(delayMs, Ct);
        }

        try
        {
            if (request.Length > 0)
            {
                await socket.SendAsync(request, SocketFlags.None, Ct);
            }

            if (closeWrite)
            {
                socket.Shutdown(SocketShutdown.Send);
            }
        }
        catch (SocketException)
        {
            // The server may close on us before we finished sending (oversized requests).
        }

        using var answer = new MemoryStream();
        byte[] buffer = new byte[8192];
        try
        {
            int read;
            while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None, Ct)) > 0)
            {
                answer.Write(buffer, 0, read);
            }
        }
        catch (SocketException)
        {
        }

        return Encoding.UTF8.GetString(answer.ToArray());
    }

    private static string ErrorOf(string answer)
    {
        using JsonDocument document = JsonDocument.Parse(answer);
        return document.RootElement.GetProperty("error").GetString()!;
    }

    [Fact]
    public async Task Status_request_gets_the_document_and_the_socket_is_root_only()
    {
        Assert.True(OperatingSystem.IsLinux() && File.GetUnixFileMode(SocketPath) == (UnixFileMode.UserRead | UnixFileMode.UserWrite), "mode 0600");

        FabricStatus status = await StatusSocketClient.GetStatusAsync(SocketPath, TimeSpan.FromSeconds(5), Ct);

        Assert.Equal("node1", status.Node.Name);
        Assert.Equal("0/1 peers reachable, 1 overlay-only failure", status.Summary.Text);
        PeerStatus peer = Assert.Single(status.Peers);
        Assert.Equal(PeerHealth.OverlayOnlyFailure, peer.Health);
        Assert.Equal(Reachability.Unreachable, peer.Overlay!.State);
        Assert.Equal("0e:00:00:00:00:02", peer.Lease.BackendData!.Value.GetProperty("VtepMAC").GetString());

        string json = Encoding.UTF8.GetString(await StatusSocketClient.GetStatusJsonAsync(SocketPath, TimeSpan.FromSeconds(5), Ct));
        Assert.Contains("\"health\": \"overlay-only-failure\"", json, StringComparison.Ordinal);
        Assert.Contains("\"state\": \"unreachable\"", json, StringComparison.Ordinal);
        Assert.Contains("\"kernel\": {", json, StringComparison.Ordinal);
        Assert.Contains("\"apiVersion\": 1", json, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("hello\n", "unknown request \"hello\"")]
    [InlineData("STATUS\n", "unknown request \"STATUS\"")]
    [InlineData("status\u0007\n", "control characters")]
    [InlineData("\n", "unknown request \"\"")]
    public async Task Bad_requests_get_an_error_naming_the_problem(string request, string expected)
    {
        string answer = await RequestAsync(Encoding.UTF8.GetBytes(request));
        Assert.Contains(expected, ErrorOf(answer), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Binary_oversized_empty_and_silent_clients_get_errors_and_the_server_keeps_serving()
    {
        Assert.Contains("not UTF-8", ErrorOf(await RequestAsync([0xff, 0xfe, 0x00, 0x80, (byte)'\n'])), StringComparison.Ordinal);
        Assert.Contains("too long", ErrorOf(await RequestAsync(new byte[StatusSocketServer.MaxRequestLength * 4])), StringComparison.Ordinal);
        Assert.Contains("empty request", ErrorOf(await RequestAsync([], closeWrite: true)), StringComparison.Ordinal);
        Assert.Contains("no complete request line", ErrorOf(await RequestAsync("sta"u8.ToArray())), StringComparison.Ordinal);

        // A request without its newline, then EOF, is still understood.
        Assert.Equal("node1", JsonDocument.Parse(await RequestAsync("status"u8.ToArray(), closeWrite: true)).RootElement.GetProperty("node").GetProperty("name").GetString());

        // A hostile peer's random bytes, many times.
        var random = new Random(14);
        for (int i = 0; i < 50; i++)
        {
            byte[] noise = new byte[random.Next(1, 3000)];
            random.NextBytes(noise);
            _ = await RequestAsync(noise, closeWrite: true);
        }

        Assert.False(_serving.IsCompleted);
        Assert.Equal("node1", (await StatusSocketClient.GetStatusAsync(SocketPath, TimeSpan.FromSeconds(5), Ct)).Node.Name);
        Assert.True(_server.Rejected >= 54);
    }

    [Fact]
    public async Task More_clients_than_slots_are_told_the_agent_is_busy()
    {
        // Two slow clients hold both slots; the third is turned away at once instead of waiting. The slow ones time out
        // after 300 ms, which a loaded machine can let pass before the third is accepted: each round brings two new ones.
        var slow = new List<Socket>();
        try
        {
            await Wait.UntilAsync(
                async () =>
                {
                    for (int i = 0; i < 2; i++)
                    {
                        var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                        slow.Add(client);
                        await client.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), Ct);
                    }

                    using JsonDocument answer = JsonDocument.Parse(await RequestAsync("status\n"u8.ToArray()));
                    return answer.RootElement.TryGetProperty("error", out JsonElement error) && error.GetString()!.Contains("busy", StringComparison.Ordinal);
                },
                "a third client is told the agent is busy");

            // Once they time out, the slots are free again.
            await Wait.UntilAsync(
                async () =>
                {
                    try
                    {
                        return (await StatusSocketClient.GetStatusAsync(SocketPath, TimeSpan.FromSeconds(5), Ct)).Node.Name == "node1";
                    }
                    catch (StatusUnavailableException)
                    {
                        return false;
                    }
                },
                "the slow clients timed out and a status request is served");
        }
        finally
        {
            slow.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task A_status_that_cannot_be_built_is_an_error_answer_not_a_crash()
    {
        _status.Build = () => throw new InvalidOperationException("the lease is being replaced");
        StatusUnavailableException e = await Assert.ThrowsAsync<StatusUnavailableException>(() => StatusSocketClient.GetStatusAsync(SocketPath, TimeSpan.FromSeconds(5), Ct));
        Assert.Contains("the agent could not build its status: the lease is being replaced", e.Message, StringComparison.Ordinal);

        _status.Build = FakeStatus.Sample;
        Assert.Equal("node1", (await StatusSocketClient.GetStatusAsync(SocketPath, TimeSpan.FromSeconds(5), Ct)).Node.Name);
    }

    [Fact]
    public async Task A_second_server_on_a_live_socket_fails_and_a_stale_socket_file_is_replaced()
    {
        using var second = new StatusSocketServer(_status, new StatusSocketOptions { Path = SocketPath }, NullLogger.Instance);
        InvalidOperationException live = await Assert.ThrowsAsync<InvalidOperationException>(() => second.RunAsync(Ct));
        Assert.Contains("already serves", live.Message, StringComparison.Ordinal);

        // A stale file: a socket bound and closed without unlinking, as after a crash.
        string stale = Path.Combine(_directory, "stale.sock");
        BindAndAbandon(stale);

        Assert.True(File.Exists(stale));
        using var replacing = new StatusSocketServer(_status, new StatusSocketOptions { Path = stale }, NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        Task run = replacing.RunAsync(stop.Token);
        FabricStatus status = await RetryAsync(() => StatusSocketClient.GetStatusAsync(stale, TimeSpan.FromSeconds(5), Ct));
        Assert.Equal("node1", status.Node.Name);
        await stop.CancelAsync();
        await run;

        string regular = Path.Combine(_directory, "regular");
        await File.WriteAllTextAsync(regular, "precious", Ct);
        using var refusing = new StatusSocketServer(_status, new StatusSocketOptions { Path = regular }, NullLogger.Instance);
        InvalidOperationException notSocket = await Assert.ThrowsAsync<InvalidOperationException>(() => refusing.RunAsync(Ct));
        Assert.Contains("is not a socket", notSocket.Message, StringComparison.Ordinal);
        Assert.Equal("precious", await File.ReadAllTextAsync(regular, Ct));
    }

    [Fact]
    public async Task The_client_explains_when_no_agent_listens()
    {
        StatusUnavailableException e = await Assert.ThrowsAsync<StatusUnavailableException>(
            () => StatusSocketClient.GetStatusAsync(Path.Combine(_directory, "none.sock"), TimeSpan.FromSeconds(2), Ct));
        Assert.Contains("is flanneld running", e.Message, StringComparison.Ordinal);
    }

    /// <summary>Binds a unix socket at <paramref name="path"/> and closes it without unlinking (as a crashed process leaves it).
    /// .NET's own Socket unlinks on dispose, so this goes through libc.</summary>
    private static unsafe void BindAndAbandon(string path)
    {
        int fd = Tmds.Linux.LibC.socket(Tmds.Linux.LibC.AF_UNIX, Tmds.Linux.LibC.SOCK_STREAM, 0);
        Assert.True(fd >= 0);
        byte* address = stackalloc byte[110];
        new Span<byte>(address, 110).Clear();
        *(ushort*)address = 1; // AF_UNIX
        Encoding.UTF8.GetBytes(path).CopyTo(new Span<byte>(address + 2, 107));
        Assert.Equal(0, Tmds.Linux.LibC.bind(fd, (Tmds.Linux.sockaddr*)address, 110));
        Assert.Equal(0, Tmds.Linux.LibC.close(fd));
    }

    private static async Task<T> RetryAsync<T>(Func<Task<T>> action)
    {
        for (int i = 0; ; i++)
        {
            try
            {
                return await action();
            }
            catch (StatusUnavailableException) when (i < 200)
            {
                await Task.Delay(10, Ct);
            }
        }
    }
}
