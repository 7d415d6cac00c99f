using System.Net.Sockets;
using System.Text;
using Flannel.Agent;
using Microsoft.Extensions.Hosting;

namespace Flannel.Host.Hosting;

/// <summary>
/// Sends systemd <c>READY=1</c> (sd_notify) once the agent has written subnet.env and started the backend, as
/// flanneld does for <c>Type=notify</c> units. Does nothing when <c>NOTIFY_SOCKET</c> is unset.
/// </summary>
internal sealed class SystemdNotifier(FlannelAgent agent) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        string? path = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        if (string.IsNullOrEmpty(path))
        {
            return;
        }

        try
        {
            await agent.Started.WaitAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (Exception)
        {
            return;
        }

        // An '@' prefix names an abstract socket.
        string address = path[0] == '@' ? "\0" + path[1..] : path;
        using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(address), stoppingToken).ConfigureAwait(false);
        await socket.SendAsync(Encoding.ASCII.GetBytes("READY=1"), SocketFlags.None, stoppingToken).ConfigureAwait(false);
    }
}
