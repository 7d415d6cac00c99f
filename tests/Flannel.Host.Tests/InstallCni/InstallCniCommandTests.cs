using System.Diagnostics;
using Flannel.Host.InstallCni;

namespace Flannel.Host.Tests.InstallCni;

/// <summary><c>flanneld install-cni</c> against real files in a temporary directory (no root needed).</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class InstallCniCommandTests : IDisposable
{
    private const string Conflist = """
        {
          "name": "cbr0",
          "cniVersion": "0.3.1",
          "plugins": [
            { "type": "flannel", "delegate": { "hairpinMode": true, "isDefaultGateway": true } },
            { "type": "portmap", "capabilities": { "portMappings": true } }
          ]
        }
        """;

    private readonly string _root = Directory.CreateTempSubdirectory("flannel-install-cni-").FullName;
    private readonly string _bin;
    private readonly string _net;
    private readonly string _plugin;
    private readonly string _conf;

    public InstallCniCommandTests()
    {
        _bin = Directory.CreateDirectory(Path.Combine(_root, "opt/cni/bin")).FullName;
        _net = Directory.CreateDirectory(Path.Combine(_root, "etc/cni/net.d")).FullName;
        _plugin = Path.Combine(_root, "flannel");
        _conf = Path.Combine(_root, "cni-conf.json");
        File.WriteAllBytes(_plugin, [0x7f, (byte)'E', (byte)'L', (byte)'F', 1, 2, 3]);
        File.WriteAllText(_conf, Conflist);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private (int ExitCode, string Output) Run(params string[] extra)
    {
        string[] args = ["--cni-plugin", _plugin, $"-cni-bin-dir={_bin}", "--cni-conf", _conf, $"--cni-conf-dir={_net}", .. extra];
        var error = new StringWriter();
        return (InstallCniCommand.Run(args, error), error.ToString());
    }

    [Fact]
    public void Installs_the_plugin_0755_and_the_conflist_0644_whatever_the_source_modes_are()
    {
        File.SetUnixFileMode(_plugin, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.SetUnixFileMode(_conf, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherWrite);

        (int code, string output) = Run();

        Assert.True(code == 0, output);
        string plugin = Path.Combine(_bin, "flannel");
        string conflist = Path.Combine(_net, "10-flannel.conflist");
        Assert.Equal(File.ReadAllBytes(_plugin), File.ReadAllBytes(plugin));
        Assert.Equal(Conflist, File.ReadAllText(conflist));
        Assert.Equal((UnixFileMode)0b111_101_101, File.GetUnixFileMode(plugin));
        Assert.Equal((UnixFileMode)0b110_100_100, File.GetUnixFileMode(conflist));
        Assert.Contains($"installed {_plugin} as {plugin} (0755, 7 bytes)", output, StringComparison.Ordinal);
        Assert.Contains($"installed {_conf} as {conflist} (0644, ", output, StringComparison.Ordinal);
        // Nothing but the two targets: no temporary file is left behind.
        Assert.Equal(["flannel"], Directory.GetFiles(_bin).Select(Path.GetFileName));
        Assert.Equal(["10-flannel.conflist"], Directory.GetFiles(_net).Select(Path.GetFileName));
    }

    [Fact]
    public void A_second_run_finds_everything_in_place_and_writes_nothing()
    {
        Assert.Equal(0, Run().ExitCode);
        string plugin = Path.Combine(_bin, "flannel");
        DateTime written = File.GetLastWriteTimeUtc(plugin);

        (int code, string output) = Run();

        Assert.Equal(0, code);
        Assert.Contains($"{plugin} is already {_plugin}", output, StringComparison.Ordinal);
        Assert.Equal(written, File.GetLastWriteTimeUtc(plugin));
    }

    [Fact]
    public void An_old_plugin_with_the_wrong_mode_is_replaced()
    {
        string plugin = Path.Combine(_bin, "flannel");
        File.WriteAllText(plugin, "old");
        File.SetUnixFileMode(plugin, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherWrite);

        Assert.Equal(0, Run().ExitCode);

        Assert.Equal(File.ReadAllBytes(_plugin), File.ReadAllBytes(plugin));
        Assert.Equal((UnixFileMode)0b111_101_101, File.GetUnixFileMode(plugin));
    }

    [Fact]
    public void A_plugin_that_is_running_is_replaced_where_cp_would_fail_with_ETXTBSY()
    {
        // A real executable runs from the target path while install-cni replaces it.
        string plugin = Path.Combine(_bin, "flannel");
        File.Copy("/bin/sleep", plugin);
        File.SetUnixFileMode(plugin, (UnixFileMode)0b111_101_101);
        using Process running = Process.Start(plugin, "30");
        try
        {
            Assert.Throws<IOException>(() => File.WriteAllText(plugin, "in place")); // what `cp` runs into

            (int code, string output) = Run();

            Assert.True(code == 0, output);
            Assert.Equal(File.ReadAllBytes(_plugin), File.ReadAllBytes(plugin));
        }
        finally
        {
            running.Kill();
            running.WaitForExit();
        }
    }

    [Theory]
    [InlineData("{", "is not valid JSON")]
    [InlineData("[]", "must be a JSON object, not Array")]
    [InlineData("""{"plugins":[{"type":"flannel"}]}""", "\"name\" is missing")]
    [InlineData("""{"name":"cbr0","plugins":[]}""", "\"plugins\" must be a non-empty list")]
    [InlineData("""{"name":"cbr0","plugins":[{"type":"flannel"},{"delegate":{}}]}""", "plugins[1] has no \"type\"")]
    [InlineData("""{"name":"cbr0"}""", "neither \"plugins\" (a conflist) nor \"type\"")]
    public void A_broken_conflist_never_replaces_the_installed_one(string content, string error)
    {
        string conflist = Path.Combine(_net, "10-flannel.conflist");
        File.WriteAllText(conflist, Conflist);
        File.WriteAllText(_conf, content);

        (int code, string output) = Run();

        Assert.Equal(1, code);
        Assert.Contains($"install-cni: {_conf}", output, StringComparison.Ordinal);
        Assert.Contains(error, output, StringComparison.Ordinal);
        Assert.Equal(Conflist, File.ReadAllText(conflist));
        Assert.False(File.Exists(Path.Combine(_bin, "flannel")), "nothing is installed when the conflist is bad");
    }

    [Fact]
    public void A_single_network_configuration_is_accepted_and_installed_under_the_given_name()
    {
        File.WriteAllText(_conf, """{"cniVersion":"0.3.1","name":"cbr0","type":"flannel"}""");

        (int code, string output) = Run("--cni-conf-name=10-flannel.conf");

        Assert.True(code == 0, output);
        Assert.True(File.Exists(Path.Combine(_net, "10-flannel.conf")));
    }

    [Fact]
    public void A_missing_host_directory_is_named()
    {
        Directory.Delete(_net);

        (int code, string output) = Run();

        Assert.Equal(1, code);
        Assert.Contains($"install-cni: {_net} does not exist (is the host directory mounted?)", output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_source_is_named()
    {
        File.Delete(_plugin);

        (int code, string output) = Run();

        Assert.Equal(1, code);
        Assert.Contains(_plugin, output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "--cni-bin" }, "flag provided but not defined: -cni-bin")]
    [InlineData(new[] { "--cni-conf" }, "flag needs an argument: -cni-conf")]
    [InlineData(new[] { "--cni-conf=" }, "invalid value \"\" for flag -cni-conf: empty")]
    [InlineData(new[] { "--cni-conf-name=../10-flannel.conflist" }, "a file name, not a path")]
    [InlineData(new[] { "stray" }, "install-cni takes no arguments, only flags: stray")]
    public void Bad_flags_are_usage_errors(string[] args, string message)
    {
        var error = new StringWriter();

        Assert.Equal(2, InstallCniCommand.Run(args, error));
        Assert.Contains(message, error.ToString(), StringComparison.Ordinal);
        Assert.Contains("Usage: flanneld install-cni", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Defaults_are_kube_flannels_layout()
    {
        InstallCniOptions options = InstallCniCommand.Parse([])!;

        Assert.Equal(("/flannel", "/opt/cni/bin", "flannel"), (options.CniPlugin, options.CniBinDir, options.CniPluginName));
        Assert.Equal(("/etc/kube-flannel/cni-conf.json", "/etc/cni/net.d", "10-flannel.conflist"), (options.CniConf, options.CniConfDir, options.CniConfName));
        Assert.Null(InstallCniCommand.Parse(["-h"]));
    }
}
