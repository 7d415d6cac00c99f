using System.Diagnostics;
using System.Text;
using Flannel.Testing.Namespaces;

namespace Flannel.EndToEnd.Tests;

/// <summary>
/// A tcpdump running in a namespace, one packet per line. <see cref="StartAsync"/> returns only once tcpdump says
/// "listening on": libpcap prints that after its socket is bound and the filter is set. The packet socket appears in
/// /proc/net/packet earlier, and packets in between are not captured.
/// </summary>
internal sealed class UnderlayCapture : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _packets = new();
    private readonly StringBuilder _messages = new();
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private UnderlayCapture(Process process) => _process = process;

    public static async Task<UnderlayCapture> StartAsync(NetworkNamespace ns, string device, string filter)
    {
        // ip netns exec execs tcpdump in place, so the process is tcpdump itself and SIGINT reaches it.
        var start = new ProcessStartInfo("ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[] { "netns", "exec", ns.Name, "tcpdump", "-i", device, "-nn", "-l", filter })
        {
            start.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = start };
        var capture = new UnderlayCapture(process);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (capture._packets)
                {
                    capture._packets.Append(e.Data).Append('\n');
                }
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                capture._listening.TrySetException(new InvalidOperationException($"tcpdump on {device} in {ns.Name} ended before it listened: {capture.Messages}"));
                return;
            }

            lock (capture._messages)
            {
                capture._messages.Append(e.Data).Append('\n');
            }

            if (e.Data.StartsWith("listening on ", StringComparison.Ordinal))
            {
                capture._listening.TrySetResult();
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await capture._listening.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch
        {
            await capture.DisposeAsync();
            throw;
        }

        return capture;
    }

    private string Messages
    {
        get
        {
            lock (_messages)
            {
                return _messages.ToString();
            }
        }
    }

    /// <summary>Stops tcpdump (SIGINT, so it flushes) and returns the packets it printed, one per line.</summary>
    public async Task<string> StopAsync()
    {
        if (!_process.HasExited)
        {
            using Process kill = Process.Start("kill", ["-INT", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            await kill.WaitForExitAsync();
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _process.WaitForExitAsync(timeout.Token); // also waits for the redirected streams to close
        lock (_packets)
        {
            return _packets.ToString();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
