using System.Text;

namespace Flannel.Cni.Tests;

/// <summary>The CNI protocol (skel) and ADD/DEL flow against a recording fake delegate.</summary>
public sealed class CniPluginTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("flannel-cni-").FullName;
    private readonly FakeRunner _runner = new();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string SubnetFile => Path.Combine(_dir, "subnet.env");

    private string DataDir => Path.Combine(_dir, "data");

    private string PluginDir => Path.Combine(_dir, "bin");

    private string NetConf(string cniVersion = "0.3.1") =>
        $$$"""{"cniVersion":"{{{cniVersion}}}","name":"cbr0","type":"flannel","subnetFile":"{{{SubnetFile}}}","dataDir":"{{{DataDir}}}","delegate":{"hairpinMode":true,"isDefaultGateway":true}}""";

    private Dictionary<string, string> Env(string command, string containerId = "c0ffee") => new()
    {
        ["CNI_COMMAND"] = command,
        ["CNI_CONTAINERID"] = containerId,
        ["CNI_NETNS"] = "/run/netns/test",
        ["CNI_IFNAME"] = "eth0",
        ["CNI_PATH"] = "/nonexistent:" + PluginDir,
        ["PATH"] = "/usr/bin",
    };

    private (int Code, string Stdout, string Stderr) Run(Dictionary<string, string> env, string stdin)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = new CniPlugin(env, _runner, stdout, stderr).Run(Encoding.UTF8.GetBytes(stdin));
        return (code, stdout.ToString(), stderr.ToString());
    }

    private void WriteSubnetEnv() =>
        File.WriteAllText(SubnetFile, "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n");

    private void InstallPlugin(string name)
    {
        Directory.CreateDirectory(PluginDir);
        File.WriteAllText(Path.Combine(PluginDir, name), "fake");
    }

    private const string StoredDelegate =
        """{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}""";

    [Fact]
    public void Add_stores_the_delegate_privately_runs_bridge_and_passes_its_result_through()
    {
        WriteSubnetEnv();
        InstallPlugin("bridge");
        _runner.Reply = new PluginOutput(0, Encoding.UTF8.GetBytes("""{"cniVersion":"0.3.1","ips":[]}"""));

        (int code, string stdout, _) = Run(Env("ADD"), NetConf());

        Assert.Equal(0, code);
        Assert.Equal("""{"cniVersion":"0.3.1","ips":[]}""", stdout);
        string stored = Path.Combine(DataDir, "c0ffee");
        Assert.Equal(StoredDelegate, File.ReadAllText(stored));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(stored));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(DataDir));
        Assert.Empty(Directory.GetFiles(DataDir, ".*")); // no temporary file left behind

        Call call = Assert.Single(_runner.Calls);
        Assert.Equal(Path.Combine(PluginDir, "bridge"), call.Path);
        Assert.Equal("ADD", call.Environment["CNI_COMMAND"]);
        Assert.Equal("/run/netns/test", call.Environment["CNI_NETNS"]);
        Assert.Equal("/usr/bin", call.Environment["PATH"]);
        Assert.Equal(StoredDelegate, call.Stdin);
    }

    [Fact]
    public void A_failing_delegate_error_is_passed_through_unchanged()
    {
        WriteSubnetEnv();
        InstallPlugin("bridge");
        _runner.Reply = new PluginOutput(1, Encoding.UTF8.GetBytes("""{"code":11,"msg":"try later","details":"busy"}"""));

        (int code, string stdout, _) = Run(Env("ADD"), NetConf());

        Assert.Equal(1, code);
        Assert.Equal("{\n    \"cniVersion\": \"0.3.1\",\n    \"code\": 11,\n    \"msg\": \"try later\",\n    \"details\": \"busy\"\n}\n", stdout);
    }

    [Fact]
    public void Del_runs_the_stored_delegate_and_removes_it_and_a_second_del_is_a_no_op()
    {
        Directory.CreateDirectory(DataDir);
        File.WriteAllText(Path.Combine(DataDir, "c0ffee"), StoredDelegate);
        InstallPlugin("bridge");

        // DEL needs neither subnet.env nor CNI_NETNS.
        Dictionary<string, string> env = Env("DEL");
        env.Remove("CNI_NETNS");
        Assert.Equal(0, Run(env, NetConf()).Code);
        Call call = Assert.Single(_runner.Calls);
        Assert.Equal("DEL", call.Environment["CNI_COMMAND"]);
        Assert.Equal(StoredDelegate, call.Stdin);
        Assert.False(File.Exists(Path.Combine(DataDir, "c0ffee")));

        Assert.Equal(0, Run(env, NetConf()).Code);
        Assert.Single(_runner.Calls);
    }

    [Fact]
    public void Del_keeps_the_stored_delegate_when_the_delegate_fails_so_a_retry_can_clean_up()
    {
        Directory.CreateDirectory(DataDir);
        File.WriteAllText(Path.Combine(DataDir, "c0ffee"), StoredDelegate);
        InstallPlugin("bridge");
        _runner.Reply = new PluginOutput(1, Encoding.UTF8.GetBytes("""{"code":999,"msg":"boom"}"""));

        (int code, string stdout, _) = Run(Env("DEL"), NetConf());

        Assert.Equal(1, code);
        Assert.Contains("\"msg\": \"boom\"", stdout, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(DataDir, "c0ffee")));
    }

    [Fact]
    public void Del_with_an_unparseable_stored_file_succeeds_and_keeps_it()
    {
        Directory.CreateDirectory(DataDir);
        File.WriteAllText(Path.Combine(DataDir, "c0ffee"), "{not json");
        (int code, _, string stderr) = Run(Env("DEL"), NetConf());
        Assert.Equal(0, code);
        Assert.Empty(_runner.Calls);
        Assert.Contains("failed to parse netconf", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Version_lists_the_supported_versions()
    {
        (int code, string stdout, _) = Run(new Dictionary<string, string> { ["CNI_COMMAND"] = "VERSION" }, "");
        Assert.Equal(0, code);
        Assert.Equal("""{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}""" + "\n", stdout);
    }

    [Fact]
    public void Check_is_a_no_op_from_0_4_0_and_refused_before()
    {
        Assert.Equal(0, Run(Env("CHECK"), NetConf("1.0.0")).Code);
        (int code, string stdout, _) = Run(Env("CHECK"), NetConf("0.3.1"));
        Assert.Equal(1, code);
        Assert.Contains("\"code\": 1,", stdout, StringComparison.Ordinal);
        Assert.Contains("config version does not allow CHECK", stdout, StringComparison.Ordinal);
        Assert.Empty(_runner.Calls);
    }

    [Fact]
    public void Missing_environment_is_reported_with_code_4()
    {
        Dictionary<string, string> env = Env("ADD");
        env.Remove("CNI_NETNS");
        env.Remove("CNI_PATH");
        (int code, string stdout, _) = Run(env, NetConf());
        Assert.Equal(1, code);
        Assert.Contains("\"code\": 4,", stdout, StringComparison.Ordinal);
        Assert.Contains("required env variables [CNI_NETNS,CNI_PATH] missing", stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("../../etc/passwd", "invalid characters in containerID")]
    [InlineData("-abc", "invalid characters in containerID")]
    public void Container_ids_that_are_not_plain_names_are_refused(string containerId, string message)
    {
        WriteSubnetEnv();
        (int code, string stdout, _) = Run(Env("ADD", containerId), NetConf());
        Assert.Equal(1, code);
        Assert.Contains(message, stdout, StringComparison.Ordinal);
        Assert.False(Directory.Exists(DataDir));
    }

    [Fact]
    public void Unsupported_versions_are_refused_with_code_1()
    {
        (int code, string stdout, _) = Run(Env("ADD"), NetConf("9.9.9"));
        Assert.Equal(1, code);
        Assert.Contains("\"msg\": \"incompatible CNI versions\"", stdout, StringComparison.Ordinal);
        Assert.Contains("config is \\\"9.9.9\\\"", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_name_is_refused_with_code_7()
    {
        (int code, string stdout, _) = Run(Env("ADD"), """{"cniVersion":"0.3.1","type":"flannel"}""");
        Assert.Equal(1, code);
        Assert.Contains("\"code\": 7,", stdout, StringComparison.Ordinal);
        Assert.Contains("missing network name", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void A_delegate_type_with_a_path_is_refused()
    {
        WriteSubnetEnv();
        (int code, string stdout, _) = Run(Env("ADD"),
            $$$"""{"cniVersion":"0.3.1","name":"cbr0","subnetFile":"{{{SubnetFile}}}","dataDir":"{{{DataDir}}}","delegate":{"type":"../../bin/sh"}}""");
        Assert.Equal(1, code);
        Assert.Contains("invalid delegate plugin type ../../bin/sh", stdout, StringComparison.Ordinal);
        Assert.Empty(_runner.Calls);
    }

    [Fact]
    public void A_delegate_missing_from_cni_path_is_reported()
    {
        WriteSubnetEnv();
        (int code, string stdout, _) = Run(Env("ADD"), NetConf());
        Assert.Equal(1, code);
        Assert.Contains($"failed to find plugin \\\"bridge\\\" in path [/nonexistent {PluginDir}]", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_cni_command_it_describes_itself_and_exits_0()
    {
        (int code, string stdout, string stderr) = Run(new Dictionary<string, string>(), "");
        Assert.Equal(0, code);
        Assert.Empty(stdout);
        Assert.Contains("CNI protocol versions supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0", stderr, StringComparison.Ordinal);
    }

    private sealed record Call(string Path, IReadOnlyDictionary<string, string> Environment, string Stdin);

    private sealed class FakeRunner : IPluginRunner
    {
        public List<Call> Calls { get; } = [];

        public PluginOutput Reply { get; set; } = new(0, []);

        public PluginOutput Run(string path, IReadOnlyDictionary<string, string> environment, byte[] stdin)
        {
            Calls.Add(new Call(path, new Dictionary<string, string>(environment), Encoding.UTF8.GetString(stdin)));
            return Reply;
        }
    }
}
