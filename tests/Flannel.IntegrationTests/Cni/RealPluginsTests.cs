using System.Diagnostics;
using System.Text;
using Flannel.Testing;

namespace Flannel.Cni.Tests;

/// <summary>
/// The built <c>flannel</c> binary against the real bridge and host-local plugins from
/// containernetworking-plugins, inside a throw-away "host" namespace and "container" namespace.
/// </summary>
public sealed class RealPluginsTests : IDisposable
{
    private const string CniPluginDirectory = "/usr/lib/cni";
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];
    private readonly string _dir = Directory.CreateTempSubdirectory("flannel-cni-real-").FullName;
    private readonly List<string> _namespaces = [];

    private string HostNs => "fnt-h" + _suffix;

    private string ContainerNs => "fnt-c" + _suffix;

    public void Dispose()
    {
        foreach (string ns in _namespaces)
        {
            Exec.Run("ip", "netns", "del", ns);
        }

        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void Add_and_del_with_bridge_and_host_local()
    {
        Privileged.RequireRoot();
        Privileged.Require(File.Exists(Path.Combine(CniPluginDirectory, "bridge")) && File.Exists(Path.Combine(CniPluginDirectory, "host-local")),
            "containernetworking-plugins (bridge, host-local) are not installed in /usr/lib/cni");
        string ip = Privileged.RequireExecutable("ip");

        foreach (string ns in new[] { HostNs, ContainerNs })
        {
            Exec.Check(ip, "netns", "add", ns);
            _namespaces.Add(ns);
        }

        string subnetFile = Path.Combine(_dir, "subnet.env");
        File.WriteAllText(subnetFile, "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n");
        string dataDir = Path.Combine(_dir, "flannel");
        string ipamDir = Path.Combine(_dir, "ipam");
        string netconf = $$$"""
            {"cniVersion":"0.3.1","name":"cbr0","type":"flannel","subnetFile":"{{{subnetFile}}}","dataDir":"{{{dataDir}}}",
             "ipam":{"dataDir":"{{{ipamDir}}}"},"delegate":{"hairpinMode":true,"isDefaultGateway":true}}
            """;
        const string ContainerId = "flannel-net-test-1";

        (int addCode, string addOut, string addErr) = RunPlugin("ADD", ContainerId, netconf);
        Assert.True(addCode == 0, $"ADD failed ({addCode}): {addOut} {addErr}");
        Assert.Contains("\"address\": \"10.244.7.2/24\"", addOut, StringComparison.Ordinal);

        // The container got eth0 with the first host-local address, and routes to the cluster network via cni0.
        string eth0 = Exec.Check(ip, "netns", "exec", ContainerNs, "ip", "-4", "addr", "show", "dev", "eth0");
        Assert.Contains("inet 10.244.7.2/24", eth0, StringComparison.Ordinal);
        Assert.Contains("mtu 1450", Exec.Check(ip, "netns", "exec", ContainerNs, "ip", "link", "show", "dev", "eth0"), StringComparison.Ordinal);
        string routes = Exec.Check(ip, "netns", "exec", ContainerNs, "ip", "-4", "route");
        Assert.Contains("10.244.0.0/16 via 10.244.7.1 dev eth0", routes, StringComparison.Ordinal);
        Assert.Contains("default via 10.244.7.1 dev eth0", routes, StringComparison.Ordinal);

        // The host namespace holds cni0 with the gateway address, and one veth enslaved to it.
        Assert.Contains("inet 10.244.7.1/24", Exec.Check(ip, "netns", "exec", HostNs, "ip", "-4", "addr", "show", "dev", "cni0"), StringComparison.Ordinal);
        Assert.Single(Veths());

        // flannel kept the delegate netconf for DEL, private to root.
        string stored = Path.Combine(dataDir, ContainerId);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(stored));
        Assert.Contains("\"ipam\":{\"dataDir\":\"" + ipamDir + "\",\"ranges\":[[{\"subnet\":\"10.244.7.0/24\"}]]", File.ReadAllText(stored), StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(ipamDir, "cbr0", "10.244.7.2")));

        (int delCode, string delOut, string delErr) = RunPlugin("DEL", ContainerId, netconf);
        Assert.True(delCode == 0, $"DEL failed ({delCode}): {delOut} {delErr}");
        Assert.NotEqual(0, Exec.Run(ip, "netns", "exec", ContainerNs, "ip", "link", "show", "dev", "eth0").Code);
        Assert.Empty(Veths());
        Assert.False(File.Exists(stored));
        Assert.False(File.Exists(Path.Combine(ipamDir, "cbr0", "10.244.7.2")));

        (int againCode, string againOut, _) = RunPlugin("DEL", ContainerId, netconf);
        Assert.True(againCode == 0, "second DEL must succeed: " + againOut);
    }

    private string[] Veths() =>
        Exec.Check("ip", "netns", "exec", HostNs, "ip", "-o", "link", "show", "master", "cni0")
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);

    private (int Code, string Stdout, string Stderr) RunPlugin(string command, string containerId, string netconf)
    {
        // The plugin runs inside the host namespace; CNI_NETNS names the container namespace.
        string plugin = Path.Combine(AppContext.BaseDirectory, "flannel");
        var environment = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = command,
            ["CNI_CONTAINERID"] = containerId,
            ["CNI_NETNS"] = "/run/netns/" + ContainerNs,
            ["CNI_IFNAME"] = "eth0",
            ["CNI_PATH"] = CniPluginDirectory,
        };
        return Exec.Run("ip", ["netns", "exec", HostNs, plugin], environment, netconf);
    }
}

/// <summary>Runs a program with an argument array (never a shell).</summary>
internal static class Exec
{
    public static (int Code, string Stdout, string Stderr) Run(string file, params string[] args) => Run(file, args, null, null);

    public static (int Code, string Stdout, string Stderr) Run(string file, IEnumerable<string> args, IDictionary<string, string>? environment, string? stdin)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        process.StandardInput.Write(stdin ?? "");
        process.StandardInput.Close();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    public static string Check(string file, params string[] args)
    {
        (int code, string stdout, string stderr) = Run(file, args);
        return code == 0 ? stdout : throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({code}): {stderr}");
    }
}
