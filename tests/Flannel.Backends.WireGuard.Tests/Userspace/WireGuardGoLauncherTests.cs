using Flannel.Backends.WireGuard.Userspace;
using Flannel.Testing;
using Flannel.Testing.Namespaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Flannel.Backends.WireGuard.Tests.Userspace;

public sealed class WireGuardGoLauncherTests
{
    [Fact]
    public void The_command_enters_the_nodes_namespaces_with_an_argument_vector()
    {
        var launcher = new WireGuardGoLauncher(new WireGuardGoLaunchOptions { NetworkNamespace = "node1", MountNamespace = "/run/fd/mnt/node1" }, new WireGuardUapiClient(), NullLogger.Instance);
        Assert.Equal(["nsenter", "--mount=/run/fd/mnt/node1", "--net=/var/run/netns/node1", "--", "wireguard-go", "flannel-wg"], launcher.CommandFor("flannel-wg"));
        Assert.Equal(["wireguard-go", "flannel-wg"], new WireGuardGoLauncher(new WireGuardGoLaunchOptions(), new WireGuardUapiClient(), NullLogger.Instance).CommandFor("flannel-wg"));
    }

    [Fact]
    public async Task A_missing_executable_is_reported_clearly()
    {
        string directory = Directory.CreateTempSubdirectory("uapi-").FullName;
        try
        {
            var launcher = new WireGuardGoLauncher(new WireGuardGoLaunchOptions { Executable = "/nonexistent/wireguard-go" }, new WireGuardUapiClient(directory), NullLogger.Instance);
            WireGuardUapiException error = await Assert.ThrowsAsync<WireGuardUapiException>(() => launcher.EnsureRunningAsync("flannel-wg", TestContext.Current.CancellationToken));
            Assert.Contains("/nonexistent/wireguard-go", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Starts_a_daemon_in_the_nodes_namespace_once_and_then_finds_it_running()
    {
        Privileged.RequireRoot();
        Privileged.RequireExecutable("wireguard-go");
        Privileged.RequireExecutable("nsenter");
        CancellationToken cancel = TestContext.Current.CancellationToken;
        await using NetworkNamespace ns = await NetworkNamespace.CreateAsync("fwg");
        string device = "fwg" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
        var client = new WireGuardUapiClient();
        var launcher = new WireGuardGoLauncher(new WireGuardGoLaunchOptions { NetworkNamespace = ns.Name }, client, NullLogger.Instance);
        try
        {
            Assert.True(await launcher.EnsureRunningAsync(device, cancel));
            Assert.Contains(device, await ns.RunCheckedAsync("ip", "-o", "link", "show", device), StringComparison.Ordinal); // the TUN device is in the node's namespace
            Assert.False(await launcher.EnsureRunningAsync(device, cancel));
            Assert.NotNull(await client.GetDeviceAsync(device, cancel));
        }
        finally
        {
            // The daemon detached; it is the only process in this test's namespace.
            foreach (string pid in (await NetworkNamespace.RunProcessAsync(["ip", "netns", "pids", ns.Name], CancellationToken.None)).StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                try
                {
                    System.Diagnostics.Process.GetProcessById(int.Parse(pid.Trim(), System.Globalization.CultureInfo.InvariantCulture)).Kill();
                }
                catch (ArgumentException)
                {
                }
            }

            File.Delete(client.SocketPath(device));
        }
    }
}
