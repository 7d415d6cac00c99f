using Flannel.Backends.WireGuard.Userspace;
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
}
