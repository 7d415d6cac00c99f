using System.Net;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Flannel.Configuration;
using Flannel.SubnetEnv;
using Flannel.Subnets;

namespace Flannel.Core.Tests.SubnetEnv;

public sealed class SubnetEnvironmentFormatTests
{
    private static IPNetwork N(string cidr) => IPNetwork.Parse(cidr);

    [Fact]
    public void Ipv4_only_matches_flannel_exactly()
    {
        var env = new SubnetEnvironment { Network = N("10.244.0.0/16"), Subnet = N("10.244.2.0/24"), Mtu = 1450, IPMasq = true };
        Assert.Equal("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.2.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n", env.Format());
    }

    [Fact]
    public void Dual_stack_matches_flannel_order()
    {
        var env = new SubnetEnvironment
        {
            Network = N("10.244.0.0/16"),
            Subnet = N("10.244.1.0/24"),
            IPv6Network = N("fd00:10:244::/56"),
            IPv6Subnet = N("fd00:10:244:1::/64"),
            Mtu = 1450,
            IPMasq = false,
        };
        Assert.Equal(
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
            env.Format());
    }

    [Fact]
    public void Ipv6_only_has_no_ipv4_lines()
    {
        var env = new SubnetEnvironment { IPv6Network = N("fd00:10:244::/56"), IPv6Subnet = N("fd00:10:244:7::/64"), Mtu = 1430, IPMasq = true };
        Assert.Equal("FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:7::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=true\n", env.Format());
    }

    [Fact]
    public void Create_takes_the_enabled_families_from_the_config()
    {
        NetworkConfig config = NetworkConfig.Parse("""{"Network":"10.244.0.0/16","IPv6Network":"fd00::/56"}""").Validate();
        var lease = new Lease { Subnet = N("10.244.2.0/24"), IPv6Subnet = N("fd00:0:0:2::/64"), Attributes = new LeaseAttributes() };
        SubnetEnvironment env = SubnetEnvironment.Create(config, lease, 1450, ipMasq: true);
        Assert.Equal("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.2.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n", env.Format());
    }

    [Fact]
    public void Create_rejects_a_lease_without_the_enabled_family()
    {
        NetworkConfig config = NetworkConfig.Parse("""{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/56"}""").Validate();
        var lease = new Lease { Subnet = N("10.244.2.0/24"), Attributes = new LeaseAttributes() };
        Assert.Throws<ArgumentException>(() => SubnetEnvironment.Create(config, lease, 1450, ipMasq: true));
    }

    [Fact]
    public void A_network_without_its_subnet_cannot_be_formatted() =>
        Assert.Throws<InvalidOperationException>(() => new SubnetEnvironment { Network = N("10.244.0.0/16"), Mtu = 1 }.Format());
}

public sealed class SubnetEnvReadTests
{
    [Fact]
    public void Reads_back_what_was_written()
    {
        var env = new SubnetEnvironment
        {
            Network = IPNetwork.Parse("10.244.0.0/16"),
            Subnet = IPNetwork.Parse("10.244.2.0/24"),
            IPv6Network = IPNetwork.Parse("fd00:10:244::/56"),
            IPv6Subnet = IPNetwork.Parse("fd00:10:244:2::/64"),
            Mtu = 1450,
            IPMasq = true,
        };
        SubnetEnvReadResult read = SubnetEnvFile.Parse(env.Format());
        Assert.True(read.Exists);
        Assert.Empty(read.Problems);
        Assert.Equal(env.Network, read.Network);
        Assert.Equal(env.Subnet, read.Subnet); // the gateway 10.244.2.1/24 reads back as the lease 10.244.2.0/24
        Assert.Equal(env.IPv6Network, read.IPv6Network);
        Assert.Equal(env.IPv6Subnet, read.IPv6Subnet);
        Assert.Equal(1450, read.Mtu);
        Assert.True(read.IPMasq);
    }

    [Fact]
    public void Dotenv_syntax_comments_quotes_export_and_crlf()
    {
        SubnetEnvReadResult read = SubnetEnvFile.Parse("# written by hand\r\nexport FLANNEL_NETWORK=\"10.244.0.0/16\"\r\n\r\nFLANNEL_SUBNET='10.244.9.1/24'\r\nFLANNEL_MTU = 1400\r\nOTHER=x\r\n");
        Assert.Equal(IPNetwork.Parse("10.244.0.0/16"), read.Network);
        Assert.Equal(IPNetwork.Parse("10.244.9.0/24"), read.Subnet);
        Assert.Equal(1400, read.Mtu);
        Assert.Null(read.IPMasq);
        Assert.Empty(read.Problems);
    }

    [Fact]
    public void A_list_with_more_than_one_entry_is_treated_as_absent_with_a_reason()
    {
        SubnetEnvReadResult read = SubnetEnvFile.Parse("FLANNEL_NETWORK=10.244.0.0/16,10.245.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\n", "/run/flannel/subnet.env");
        Assert.Null(read.Network);
        Assert.Equal(IPNetwork.Parse("10.244.3.0/24"), read.Subnet);
        string problem = Assert.Single(read.Problems);
        Assert.Equal("/run/flannel/subnet.env: FLANNEL_NETWORK=10.244.0.0/16,10.245.0.0/16 has 2 entries, expected exactly one; ignoring it", problem);
    }

    [Theory]
    [InlineData("FLANNEL_SUBNET=garbage,10.244.1.1/24\n", "garbage")]
    [InlineData("FLANNEL_SUBNET=10.244.1.1/24,garbage\n", "garbage")]
    [InlineData("FLANNEL_SUBNET=010.244.1.1/24,10.244.1.1/24\n", "010.244.1.1/24")]
    [InlineData("FLANNEL_SUBNET=,10.244.1.1/24\n", "")]
    public void A_list_keeps_its_good_entry_and_drops_the_bad_one_as_flannel_does(string text, string bad)
    {
        SubnetEnvReadResult read = SubnetEnvFile.Parse(text);
        Assert.Equal(IPNetwork.Parse("10.244.1.0/24"), read.Subnet);
        string value = text["FLANNEL_SUBNET=".Length..].TrimEnd('\n');
        Assert.Equal($"subnet.env: FLANNEL_SUBNET={value}: entry '{bad}' is not an IPv4 CIDR; ignoring that entry", Assert.Single(read.Problems));
    }

    [Theory]
    [InlineData("FLANNEL_SUBNET=10.244.3.1\n", "subnet.env: FLANNEL_SUBNET=10.244.3.1 is not an IPv4 CIDR; ignoring it")]
    [InlineData("FLANNEL_SUBNET=fd00::1/64\n", "subnet.env: FLANNEL_SUBNET=fd00::1/64 is not an IPv4 CIDR; ignoring it")]
    [InlineData("FLANNEL_IPV6_SUBNET=10.0.0.1/24\n", "subnet.env: FLANNEL_IPV6_SUBNET=10.0.0.1/24 is not an IPv6 CIDR; ignoring it")]
    [InlineData("FLANNEL_SUBNET=\n", "subnet.env: FLANNEL_SUBNET is empty")]
    [InlineData("FLANNEL_MTU=big\n", "subnet.env: FLANNEL_MTU=big is not a positive integer; ignoring it")]
    [InlineData("FLANNEL_IPMASQ=maybe\n", "subnet.env: FLANNEL_IPMASQ=maybe is not true or false; ignoring it")]
    public void Bad_values_are_ignored_with_a_reason(string text, string problem)
    {
        SubnetEnvReadResult read = SubnetEnvFile.Parse(text);
        Assert.Null(read.Subnet);
        Assert.Null(read.IPv6Subnet);
        Assert.Null(read.Mtu);
        Assert.Equal(problem, Assert.Single(read.Problems));
    }

    [Fact]
    public void Missing_file_is_not_an_error()
    {
        SubnetEnvReadResult read = SubnetEnvFile.Read(Path.Combine(Path.GetTempPath(), $"fnt-{Guid.NewGuid():N}", "subnet.env"));
        Assert.False(read.Exists);
        Assert.Null(read.Subnet);
        Assert.Contains("does not exist", Assert.Single(read.Problems), StringComparison.Ordinal);
    }
}

[SupportedOSPlatform("linux")]
public sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"fnt-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(Path))
        {
            // Make everything deletable again after a test removed permissions.
            foreach (string dir in Directory.GetDirectories(Path, "*", SearchOption.AllDirectories))
            {
                File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            Directory.Delete(Path, recursive: true);
        }
    }
}

[SupportedOSPlatform("linux")]
public sealed class SubnetEnvFileTests
{
    private static readonly SubnetEnvironment Env = new()
    {
        Network = IPNetwork.Parse("10.244.0.0/16"),
        Subnet = IPNetwork.Parse("10.244.2.0/24"),
        Mtu = 1450,
        IPMasq = true,
    };

    [Fact]
    public void Writes_the_exact_text_with_mode_0644_creating_parents_0755()
    {
        using var temp = new TempDirectory();
        string path = Path.Combine(temp.Path, "run", "flannel", "subnet.env");

        SubnetEnvFile.Write(path, Env);

        Assert.Equal("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.2.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n", File.ReadAllText(path));
        Assert.Equal(SubnetEnvFile.FileMode, File.GetUnixFileMode(path));
        Assert.Equal(SubnetEnvFile.DirectoryMode, File.GetUnixFileMode(Path.Combine(temp.Path, "run", "flannel")));
        Assert.Equal(SubnetEnvFile.DirectoryMode, File.GetUnixFileMode(Path.Combine(temp.Path, "run")));
        Assert.Equal(["subnet.env"], Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
    }

    [Fact]
    public void Replaces_an_existing_file_and_resets_its_mode()
    {
        using var temp = new TempDirectory();
        string path = Path.Combine(temp.Path, "subnet.env");
        File.WriteAllText(path, "FLANNEL_SUBNET=10.244.9.1/24\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        using var oldFile = new StreamReader(path); // keeps the old inode open

        SubnetEnvFile.Write(path, Env);

        Assert.Equal(Env.Format(), File.ReadAllText(path));
        Assert.Equal(SubnetEnvFile.FileMode, File.GetUnixFileMode(path));

        // Replaced by rename, not rewritten in place: the old inode still holds the old text.
        Assert.Equal("FLANNEL_SUBNET=10.244.9.1/24\n", oldFile.ReadToEnd());
    }

    [Fact]
    public void A_failed_write_leaves_the_old_file_and_no_temp_file()
    {
        using var temp = new TempDirectory();

        // The target is a non-empty directory: rename(2) over it fails after the temp file was written.
        string path = Path.Combine(temp.Path, "subnet.env");
        Directory.CreateDirectory(path);
        File.WriteAllText(Path.Combine(path, "keep"), "x");

        Assert.ThrowsAny<IOException>(() => SubnetEnvFile.Write(path, Env));

        Assert.Equal([path], Directory.GetFileSystemEntries(temp.Path));
        Assert.Equal("x", File.ReadAllText(Path.Combine(path, "keep")));
    }

    [Fact]
    public async Task Readers_never_see_a_partial_file()
    {
        using var temp = new TempDirectory();
        string path = Path.Combine(temp.Path, "subnet.env");
        SubnetEnvironment a = Env;
        SubnetEnvironment b = Env with { Subnet = IPNetwork.Parse("10.244.200.0/24"), Mtu = 8950, IPMasq = false };
        string textA = a.Format();
        string textB = b.Format();
        SubnetEnvFile.Write(path, a);

        using var stop = new CancellationTokenSource();
        var writer = Task.Run(() =>
        {
            for (int i = 0; i < 50; i++)
            {
                SubnetEnvFile.Write(path, i % 2 == 0 ? b : a);
            }

            stop.Cancel();
        }, TestContext.Current.CancellationToken);

        int reads = 0;
        while (!stop.IsCancellationRequested || reads == 0)
        {
            string seen = File.ReadAllText(path);
            Assert.True(seen == textA || seen == textB, $"partial or mixed content: {seen}");
            reads++;
        }

        await writer;
        Assert.Equal(["subnet.env"], Directory.GetFiles(temp.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void Read_returns_what_write_wrote()
    {
        using var temp = new TempDirectory();
        string path = Path.Combine(temp.Path, "subnet.env");
        SubnetEnvFile.Write(path, Env);
        SubnetEnvReadResult read = SubnetEnvFile.Read(path);
        Assert.True(read.Exists);
        Assert.Equal(Env.Subnet, read.Subnet);
    }
}

/// <summary>Changes the process umask, so it runs alone.</summary>
[CollectionDefinition(nameof(UmaskCollection), DisableParallelization = true)]
public sealed class UmaskCollection;

[Collection(nameof(UmaskCollection))]
[SupportedOSPlatform("linux")]
public sealed class SubnetEnvUmaskTests
{
    [DllImport("libc", SetLastError = true)]
    private static extern uint umask(uint mask);

    [Fact]
    public void Modes_do_not_depend_on_the_umask()
    {
        using var temp = new TempDirectory();
        string path = Path.Combine(temp.Path, "new-dir", "subnet.env");
        uint previous = umask(0x3F); // 077
        try
        {
            SubnetEnvFile.Write(path, new SubnetEnvironment
            {
                Network = IPNetwork.Parse("10.244.0.0/16"),
                Subnet = IPNetwork.Parse("10.244.2.0/24"),
                Mtu = 1450,
                IPMasq = true,
            });
        }
        finally
        {
            _ = umask(previous);
        }

        Assert.Equal(SubnetEnvFile.FileMode, File.GetUnixFileMode(path));
        Assert.Equal(SubnetEnvFile.DirectoryMode, File.GetUnixFileMode(Path.GetDirectoryName(path)!));
    }
}
