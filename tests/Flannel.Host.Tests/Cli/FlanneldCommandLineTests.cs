using System.Collections;
using System.Net;
using Flannel.Host.Cli;

namespace Flannel.Host.Tests.Cli;

public sealed class FlanneldCommandLineTests
{
    private static readonly Hashtable NoEnvironment = new();

    private static FlanneldOptions Parse(params string[] args) => FlanneldCommandLine.Parse(args, NoEnvironment);

    private static FlanneldOptions ParseWithEnv(Hashtable env, params string[] args) => FlanneldCommandLine.Parse(args, env);

    private static FlanneldCommandLineException Reject(params string[] args) =>
        Assert.Throws<FlanneldCommandLineException>(() => FlanneldCommandLine.Parse(args, NoEnvironment));

    [Fact]
    public void Defaults_are_flannels()
    {
        FlanneldOptions o = Parse();
        Assert.Equal("http://127.0.0.1:4001,http://127.0.0.1:2379", o.EtcdEndpoints);
        Assert.Equal(["http://127.0.0.1:4001", "http://127.0.0.1:2379"], o.EtcdEndpointList);
        Assert.Equal("/coreos.com/network", o.EtcdPrefix);
        Assert.Equal("", o.EtcdKeyFile);
        Assert.Equal("", o.EtcdCertFile);
        Assert.Equal("", o.EtcdCAFile);
        Assert.Equal("", o.EtcdUsername);
        Assert.Equal("", o.EtcdPassword);
        Assert.False(o.KubeSubnetManager);
        Assert.Equal("", o.KubeApiUrl);
        Assert.Equal("", o.KubeConfigFile);
        Assert.Equal("flannel.alpha.coreos.com", o.KubeAnnotationPrefix);
        Assert.Equal("/etc/kube-flannel/net-conf.json", o.NetConfigPath);
        Assert.True(o.SetNodeNetworkUnavailable);
        Assert.Empty(o.Interfaces);
        Assert.Empty(o.InterfaceRegexes);
        Assert.Null(o.InterfaceCanReach);
        Assert.Null(o.PublicIP);
        Assert.Null(o.PublicIPv6);
        Assert.Equal("/run/flannel/subnet.env", o.SubnetFile);
        Assert.Equal(60, o.SubnetLeaseRenewMarginMinutes);
        Assert.Equal(TimeSpan.FromHours(1), o.SubnetLeaseRenewMargin);
        Assert.False(o.IPMasq);
        Assert.False(o.IPMasqFullyRandomDisable);
        Assert.Equal(5, o.IptablesResyncSeconds);
        Assert.True(o.IptablesForwardRules);
        Assert.False(o.IPBlackholeRoute);
        Assert.Equal(IPAddress.Any, o.HealthzIP);
        Assert.Equal(0, o.HealthzPort);
        Assert.False(o.Version);
        Assert.Equal(0, o.Verbosity);
        Assert.Empty(o.CommandLineFlags);
        Assert.Empty(o.EnvironmentFlags);
        Assert.False(o.HelpRequested);
    }

    [Fact]
    public void Every_flag_is_accepted_with_its_value()
    {
        FlanneldOptions o = Parse(
            "--etcd-endpoints=https://10.0.0.1:2379,https://10.0.0.2:2379",
            "--etcd-prefix=/my/network",
            "--etcd-keyfile=/k.pem",
            "--etcd-certfile=/c.pem",
            "--etcd-cafile=/ca.pem",
            "--etcd-username=alice",
            "--etcd-password=s3cret",
            "--kube-subnet-mgr",
            "--kube-api-url=https://api:6443",
            "--kubeconfig-file=/kc",
            "--kube-annotation-prefix=example.com",
            "--net-config-path=/net.json",
            "--set-node-network-unavailable=false",
            "--iface=eth1",
            "--iface-regex=^en.*",
            "--iface-can-reach=198.18.0.1",
            "--public-ip=198.18.0.2",
            "--public-ipv6=fd00::2",
            "--subnet-file=/tmp/s.env",
            "--subnet-lease-renew-margin=30",
            "--ip-masq",
            "--ip-masq-fully-random-disable",
            "--iptables-resync=7",
            "--iptables-forward-rules=false",
            "--ip-blackhole-route",
            "--healthz-ip=127.0.0.1",
            "--healthz-port=8081",
            "-v=4",
            "-vmodule=main=3,agent*=5",
            "-log_backtrace_at=main.go:12",
            "--status-socket=/tmp/f.sock",
            "--probe-interval=1m30s",
            "--probe-timeout=250ms",
            "--probe-per-peer-metrics",
            "--status-http");
        Assert.Equal(["https://10.0.0.1:2379", "https://10.0.0.2:2379"], o.EtcdEndpointList);
        Assert.Equal("/my/network", o.EtcdPrefix);
        Assert.Equal("/k.pem", o.EtcdKeyFile);
        Assert.Equal("/c.pem", o.EtcdCertFile);
        Assert.Equal("/ca.pem", o.EtcdCAFile);
        Assert.True(o.EtcdUsesTls);
        Assert.Equal("alice", o.EtcdUsername);
        Assert.Equal("s3cret", o.EtcdPassword);
        Assert.True(o.KubeSubnetManager);
        Assert.Equal("https://api:6443", o.KubeApiUrl);
        Assert.Equal("/kc", o.KubeConfigFile);
        Assert.Equal("example.com", o.KubeAnnotationPrefix);
        Assert.Equal("/net.json", o.NetConfigPath);
        Assert.False(o.SetNodeNetworkUnavailable);
        Assert.Equal(["eth1"], o.Interfaces);
        Assert.Equal(["^en.*"], o.InterfaceRegexes);
        Assert.Equal(IPAddress.Parse("198.18.0.1"), o.InterfaceCanReach);
        Assert.Equal(IPAddress.Parse("198.18.0.2"), o.PublicIP);
        Assert.Equal(IPAddress.Parse("fd00::2"), o.PublicIPv6);
        Assert.Equal("/tmp/s.env", o.SubnetFile);
        Assert.Equal(30, o.SubnetLeaseRenewMarginMinutes);
        Assert.True(o.IPMasq);
        Assert.True(o.IPMasqFullyRandomDisable);
        Assert.Equal(7, o.IptablesResyncSeconds);
        Assert.Equal(TimeSpan.FromSeconds(7), o.IptablesResyncPeriod);
        Assert.False(o.IptablesForwardRules);
        Assert.True(o.IPBlackholeRoute);
        Assert.Equal(IPAddress.Loopback, o.HealthzIP);
        Assert.Equal(8081, o.HealthzPort);
        Assert.Equal(4, o.Verbosity);
        Assert.Equal("main=3,agent*=5", o.VModule);
        Assert.Equal("main.go:12", o.LogBacktraceAt);
        Assert.Equal("/tmp/f.sock", o.StatusSocket);
        Assert.Equal(TimeSpan.FromSeconds(90), o.ProbeInterval);
        Assert.Equal(TimeSpan.FromMilliseconds(250), o.ProbeTimeout);
        Assert.True(o.ProbePerPeerMetrics);
        Assert.True(o.StatusHttp);
        Assert.Equal(35, o.CommandLineFlags.Count);
        Assert.Equal(FlanneldCommandLine.FlagNames.Count - 1, o.CommandLineFlags.Count); // all but --version
    }

    [Fact]
    public void Every_flag_name_is_covered_by_the_tests_above()
    {
        Assert.Equal(
            [
                "etcd-cafile", "etcd-certfile", "etcd-endpoints", "etcd-keyfile", "etcd-password", "etcd-prefix", "etcd-username",
                "healthz-ip", "healthz-port", "iface", "iface-can-reach", "iface-regex", "ip-blackhole-route", "ip-masq",
                "ip-masq-fully-random-disable", "iptables-forward-rules", "iptables-resync", "kube-annotation-prefix", "kube-api-url",
                "kube-subnet-mgr", "kubeconfig-file", "log_backtrace_at", "net-config-path", "probe-interval", "probe-per-peer-metrics", "probe-timeout", "public-ip", "public-ipv6",
                "set-node-network-unavailable", "status-http", "status-socket", "subnet-file", "subnet-lease-renew-margin", "v", "version", "vmodule",
            ],
            FlanneldCommandLine.FlagNames);
    }

    [Fact]
    public void Fabric_health_flags_default_to_the_documented_values_and_map_onto_the_agent()
    {
        FlanneldOptions defaults = Parse();
        Assert.Equal("/run/flannel/flannel.sock", defaults.StatusSocket);
        Assert.Equal(TimeSpan.FromMinutes(1), defaults.ProbeInterval);
        Assert.Equal(TimeSpan.FromSeconds(1), defaults.ProbeTimeout);
        var agent = new Flannel.Agent.FlannelAgentOptions();
        Flannel.Host.Hosting.FlanneldHost.ApplyAgentOptions(agent, Parse("--probe-interval=10s", "--probe-timeout=2s", "--status-socket="));
        Assert.True(agent.Probes.Enabled);
        Assert.Equal(TimeSpan.FromSeconds(10), agent.Probes.Interval);
        Assert.Equal(TimeSpan.FromSeconds(2), agent.Probes.Timeout);
        Assert.Equal("", agent.StatusSocket);

        var off = new Flannel.Agent.FlannelAgentOptions();
        Flannel.Host.Hosting.FlanneldHost.ApplyAgentOptions(off, Parse("--probe-interval=0"));
        Assert.False(off.Probes.Enabled);
        Assert.Equal("/run/flannel/flannel.sock", off.StatusSocket);
    }

    [Theory]
    [InlineData("--probe-interval=soon")]
    [InlineData("--probe-interval=-5s")]
    [InlineData("--probe-timeout=0")]
    [InlineData("--probe-timeout=10")]
    public async Task Bad_probe_durations_are_rejected_with_the_flag_named(string arg)
    {
        var error = new StringWriter();
        int exit = await FlanneldCommandLine.InvokeAsync([arg], NoEnvironment, (_, _) => Task.FromResult(0), error, TestContext.Current.CancellationToken);
        Assert.NotEqual(0, exit);
        Assert.Contains(arg.Split('=')[0].TrimStart('-'), error.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("-etcd-prefix=/a")]
    [InlineData("--etcd-prefix=/a")]
    [InlineData("-etcd-prefix", "/a")]
    [InlineData("--etcd-prefix", "/a")]
    public void Go_flag_syntax_single_and_double_dash_with_or_without_equals(params string[] args) =>
        Assert.Equal("/a", Parse(args).EtcdPrefix);

    [Theory]
    [InlineData("--ip-masq", true)]
    [InlineData("-ip-masq", true)]
    [InlineData("--ip-masq=true", true)]
    [InlineData("--ip-masq=false", false)]
    [InlineData("--ip-masq=1", true)]
    [InlineData("--ip-masq=0", false)]
    [InlineData("--ip-masq=t", true)]
    [InlineData("--ip-masq=F", false)]
    [InlineData("--ip-masq=TRUE", true)]
    [InlineData("--ip-masq=False", false)]
    public void Bool_flags_take_go_boolean_spellings(string arg, bool expected) => Assert.Equal(expected, Parse(arg).IPMasq);

    [Fact]
    public void A_bool_flag_does_not_consume_the_next_argument_which_ends_parsing()
    {
        FlanneldOptions o = Parse("--ip-masq", "false", "--iptables-resync=9");
        Assert.True(o.IPMasq);
        Assert.Equal(5, o.IptablesResyncSeconds); // Go stops at the first non-flag argument
        Assert.Equal(["false", "--iptables-resync=9"], o.ExtraArguments);
    }

    [Fact]
    public void Double_dash_ends_the_flags()
    {
        FlanneldOptions o = Parse("--ip-masq", "--", "--healthz-port=1");
        Assert.True(o.IPMasq);
        Assert.Equal(0, o.HealthzPort);
        Assert.Equal(["--healthz-port=1"], o.ExtraArguments);
    }

    [Fact]
    public void Repeatable_iface_flags_keep_every_value_in_order()
    {
        FlanneldOptions o = Parse("--iface=eth0", "-iface", "198.18.0.5", "--iface-regex=^en", "--iface=bond0", "--iface-regex", "^wl.*");
        Assert.Equal(["eth0", "198.18.0.5", "bond0"], o.Interfaces);
        Assert.Equal(["^en", "^wl.*"], o.InterfaceRegexes);
    }

    [Fact]
    public void A_repeated_single_valued_flag_keeps_the_last_value()
    {
        FlanneldOptions o = Parse("--etcd-prefix=/a", "--etcd-prefix=/b", "--ip-masq", "--ip-masq=false");
        Assert.Equal("/b", o.EtcdPrefix);
        Assert.False(o.IPMasq);
    }

    [Fact]
    public void Values_may_start_with_a_dash_or_contain_equals_and_colons()
    {
        FlanneldOptions o = Parse("-etcd-password", "-p=w:d", "--etcd-username=a=b", "--etcd-endpoints", "--ip-masq", "--etcd-prefix=@file");
        Assert.Equal("-p=w:d", o.EtcdPassword);
        Assert.Equal("a=b", o.EtcdUsername);
        Assert.Equal("--ip-masq", o.EtcdEndpoints);
        Assert.False(o.IPMasq);
        Assert.Equal("@file", o.EtcdPrefix); // no response-file expansion
    }

    [Fact]
    public void Empty_values_are_allowed_for_strings_and_optional_addresses()
    {
        FlanneldOptions o = Parse("--etcd-prefix=", "--public-ip=");
        Assert.Equal("", o.EtcdPrefix);
        Assert.Null(o.PublicIP);
    }

    [Theory]
    [InlineData("0x10", 16)]
    [InlineData("010", 8)]
    [InlineData("0o17", 15)]
    [InlineData("0b101", 5)]
    [InlineData("1_0", -1)]
    [InlineData("0x_1_0", 16)]
    [InlineData("+12", 12)]
    public void Integers_use_go_base_prefixes(string text, int expected)
    {
        if (expected < 0)
        {
            FlanneldCommandLineException e = Reject("--iptables-resync=" + text);
            Assert.Equal($"invalid value \"{text}\" for flag -iptables-resync: parse error", e.Message);
        }
        else
        {
            Assert.Equal(expected, Parse("--iptables-resync=" + text).IptablesResyncSeconds);
        }
    }

    [Theory]
    [InlineData("--iptables-resync=abc", "invalid value \"abc\" for flag -iptables-resync: parse error")]
    [InlineData("--iptables-resync=0", "invalid value \"0\" for flag -iptables-resync: must be at least 1")]
    [InlineData("--iptables-resync=99999999999999999999", "invalid value \"99999999999999999999\" for flag -iptables-resync: value out of range")]
    [InlineData("--healthz-port=70000", "invalid value \"70000\" for flag -healthz-port: must be between 0 and 65535")]
    [InlineData("--healthz-port=-1", "invalid value \"-1\" for flag -healthz-port: must be between 0 and 65535")]
    [InlineData("--healthz-ip=localhost", "invalid value \"localhost\" for flag -healthz-ip: not an IP address")]
    [InlineData("--public-ip=fd00::1", "invalid value \"fd00::1\" for flag -public-ip: not an IPv4 address")]
    [InlineData("--public-ip=300.1.1.1", "invalid value \"300.1.1.1\" for flag -public-ip: not an IPv4 address")]
    [InlineData("--public-ipv6=10.0.0.1", "invalid value \"10.0.0.1\" for flag -public-ipv6: not an IPv6 address")]
    [InlineData("--iface-can-reach=eth0", "invalid value \"eth0\" for flag -iface-can-reach: not an IP address")]
    [InlineData("--ip-masq=yes", "invalid boolean value \"yes\" for -ip-masq: parse error")]
    [InlineData("--subnet-lease-renew-margin=x", "invalid value \"x\" for flag -subnet-lease-renew-margin: parse error")]
    [InlineData("-v=high", "invalid value \"high\" for flag -v: parse error")]
    [InlineData("-vmodule=main", "invalid value \"main\" for flag -vmodule: syntax error: expect comma-separated list of filename=N")]
    [InlineData("-log_backtrace_at=main.go", "invalid value \"main.go\" for flag -log_backtrace_at: syntax error: expect file.go:234")]
    [InlineData("--no-such-flag", "flag provided but not defined: -no-such-flag")]
    [InlineData("---ip-masq", "bad flag syntax: ---ip-masq")]
    [InlineData("-=x", "bad flag syntax: -=x")]
    [InlineData("--etcd-prefix", "flag needs an argument: -etcd-prefix")]
    public void Bad_values_are_rejected_naming_the_flag_and_value(string arg, string message)
    {
        FlanneldCommandLineException e = Reject(arg);
        Assert.Equal(message, e.Message);
        Assert.Equal(2, e.ExitCode);
    }

    [Fact]
    public void A_bad_iface_regex_is_rejected()
    {
        FlanneldCommandLineException e = Reject("--iface-regex=eth[");
        Assert.StartsWith("invalid value \"eth[\" for flag -iface-regex: invalid regular expression:", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1440")]
    [InlineData("-5")]
    public void Renew_margin_out_of_range_uses_flannels_message_and_exit_code_1(string value)
    {
        FlanneldCommandLineException e = Reject("--subnet-lease-renew-margin=" + value);
        Assert.Equal("Invalid subnet-lease-renew-margin option, out of acceptable range", e.Message);
        Assert.Equal(1, e.ExitCode);
    }

    [Theory]
    [InlineData("1")]
    [InlineData("1439")]
    public void Renew_margin_bounds_are_accepted(string value) =>
        Assert.Equal(int.Parse(value), Parse("--subnet-lease-renew-margin=" + value).SubnetLeaseRenewMarginMinutes);

    [Fact]
    public void Environment_fills_flags_absent_from_the_command_line()
    {
        var env = new Hashtable
        {
            ["FLANNELD_ETCD_ENDPOINTS"] = "http://198.18.0.10:2379",
            ["FLANNELD_IFACE"] = "eth9",
            ["FLANNELD_IPTABLES_FORWARD_RULES"] = "false",
            ["FLANNELD_IP_MASQ"] = "true",
            ["FLANNELD_SUBNET_LEASE_RENEW_MARGIN"] = "120",
            ["FLANNELD_HEALTHZ_PORT"] = "8081",
            ["FLANNELD_PUBLIC_IPV6"] = "fd00::9",
            ["FLANNELD_LOG_BACKTRACE_AT"] = "x.go:1",
            ["FLANNELD_V"] = "2",
        };
        FlanneldOptions o = ParseWithEnv(env);
        Assert.Equal(["http://198.18.0.10:2379"], o.EtcdEndpointList);
        Assert.Equal(["eth9"], o.Interfaces);
        Assert.False(o.IptablesForwardRules);
        Assert.True(o.IPMasq);
        Assert.Equal(120, o.SubnetLeaseRenewMarginMinutes);
        Assert.Equal(8081, o.HealthzPort);
        Assert.Equal(IPAddress.Parse("fd00::9"), o.PublicIPv6);
        Assert.Equal("x.go:1", o.LogBacktraceAt);
        Assert.Equal(2, o.Verbosity);
        Assert.Equal(9, o.EnvironmentFlags.Count);
        Assert.Empty(o.CommandLineFlags);
    }

    [Fact]
    public void Command_line_wins_over_the_environment()
    {
        var env = new Hashtable
        {
            ["FLANNELD_ETCD_PREFIX"] = "/from/env",
            ["FLANNELD_IFACE"] = "env0",
            ["FLANNELD_IP_MASQ"] = "true",
            ["FLANNELD_HEALTHZ_PORT"] = "not-a-number", // never read: the flag is on the command line
        };
        FlanneldOptions o = ParseWithEnv(env, "--etcd-prefix=/from/cli", "--iface=cli0", "--iface=cli1", "--ip-masq=false", "--healthz-port=1");
        Assert.Equal("/from/cli", o.EtcdPrefix);
        Assert.Equal(["cli0", "cli1"], o.Interfaces);
        Assert.False(o.IPMasq);
        Assert.Equal(1, o.HealthzPort);
        Assert.Empty(o.EnvironmentFlags);
    }

    [Fact]
    public void A_repeatable_flag_gets_a_single_value_from_the_environment()
    {
        FlanneldOptions o = ParseWithEnv(new Hashtable { ["FLANNELD_IFACE"] = "eth0,eth1", ["FLANNELD_IFACE_REGEX"] = "^e.*" });
        Assert.Equal(["eth0,eth1"], o.Interfaces);
        Assert.Equal(["^e.*"], o.InterfaceRegexes);
    }

    [Fact]
    public void Empty_environment_values_are_ignored()
    {
        FlanneldOptions o = ParseWithEnv(new Hashtable { ["FLANNELD_ETCD_PREFIX"] = "", ["FLANNELD_IPTABLES_RESYNC"] = "" });
        Assert.Equal("/coreos.com/network", o.EtcdPrefix);
        Assert.Equal(5, o.IptablesResyncSeconds);
    }

    [Theory]
    [InlineData("FLANNELD_IPTABLES_RESYNC", "fast", "invalid value \"fast\" for FLANNELD_IPTABLES_RESYNC: parse error")]
    [InlineData("FLANNELD_IP_MASQ", "yes", "invalid value \"yes\" for FLANNELD_IP_MASQ: parse error")]
    [InlineData("FLANNELD_PUBLIC_IP", "fd00::1", "invalid value \"fd00::1\" for FLANNELD_PUBLIC_IP: not an IPv4 address")]
    [InlineData("FLANNELD_HEALTHZ_PORT", "65536", "invalid value \"65536\" for FLANNELD_HEALTHZ_PORT: must be between 0 and 65535")]
    public void Bad_environment_values_are_rejected_naming_the_variable_and_value(string name, string value, string message)
    {
        FlanneldCommandLineException e = Assert.Throws<FlanneldCommandLineException>(() => ParseWithEnv(new Hashtable { [name] = value }));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void Renew_margin_from_the_environment_is_range_checked_too()
    {
        FlanneldCommandLineException e = Assert.Throws<FlanneldCommandLineException>(
            () => ParseWithEnv(new Hashtable { ["FLANNELD_SUBNET_LEASE_RENEW_MARGIN"] = "1440" }));
        Assert.Equal(1, e.ExitCode);
    }

    [Fact]
    public void Version_is_checked_before_the_environment_and_is_not_read_from_it()
    {
        FlanneldOptions o = ParseWithEnv(new Hashtable { ["FLANNELD_IPTABLES_RESYNC"] = "bad" }, "--version");
        Assert.True(o.Version);
        Assert.False(ParseWithEnv(new Hashtable { ["FLANNELD_VERSION"] = "true" }).Version);
    }

    [Theory]
    [InlineData("-h")]
    [InlineData("--help")]
    [InlineData("-help")]
    public void Help_is_requested_with_h_and_help(string arg) => Assert.True(Parse(arg).HelpRequested);

    [Fact]
    public async Task InvokeAsync_prints_version_to_stderr_and_exits_0()
    {
        var error = new StringWriter();
        bool ran = false;
        int code = await FlanneldCommandLine.InvokeAsync(["--version"], NoEnvironment, (_, _) => { ran = true; return Task.FromResult(5); }, error, TestContext.Current.CancellationToken);
        Assert.Equal(0, code);
        Assert.False(ran);
        Assert.StartsWith("v", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task InvokeAsync_prints_usage_errors_and_exits_2()
    {
        var error = new StringWriter();
        int code = await FlanneldCommandLine.InvokeAsync(["--nope"], NoEnvironment, (_, _) => Task.FromResult(0), error, TestContext.Current.CancellationToken);
        Assert.Equal(2, code);
        Assert.StartsWith("flag provided but not defined: -nope\nUsage: flanneld [OPTION]...\n", error.ToString().ReplaceLineEndings("\n"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task InvokeAsync_exits_1_for_the_renew_margin_without_usage()
    {
        var error = new StringWriter();
        int code = await FlanneldCommandLine.InvokeAsync(["--subnet-lease-renew-margin=0"], NoEnvironment, (_, _) => Task.FromResult(0), error, TestContext.Current.CancellationToken);
        Assert.Equal(1, code);
        Assert.Equal(FlanneldCommandLine.RenewMarginOutOfRangeMessage, error.ToString().Trim());
    }

    [Fact]
    public async Task InvokeAsync_runs_the_host_with_the_options()
    {
        FlanneldOptions? seen = null;
        int code = await FlanneldCommandLine.InvokeAsync(["--ip-masq", "--kube-subnet-mgr"], NoEnvironment,
            (o, _) => { seen = o; return Task.FromResult(3); }, new StringWriter(), TestContext.Current.CancellationToken);
        Assert.Equal(3, code);
        Assert.True(seen!.IPMasq);
        Assert.True(seen.KubeSubnetManager);
    }

    [Fact]
    public void Usage_lists_every_flag_in_go_layout()
    {
        string usage = FlanneldCommandLine.GetUsage();
        Assert.Contains("  -etcd-endpoints string\n    \ta comma-delimited list of etcd endpoints (default \"http://127.0.0.1:4001,http://127.0.0.1:2379\")\n", usage, StringComparison.Ordinal);
        Assert.Contains("  -iptables-resync int\n    \tresync period for iptables rules, in seconds (default 5)\n", usage, StringComparison.Ordinal);
        Assert.Contains("  -ip-masq\n    \tsetup IP masquerade rule for traffic destined outside of overlay network\n", usage, StringComparison.Ordinal);
        Assert.Contains("  -iptables-forward-rules\n    \tadd default accept rules to FORWARD chain in iptables (default true)\n", usage, StringComparison.Ordinal);
        foreach (string name in FlanneldCommandLine.FlagNames)
        {
            Assert.Contains("\n  -" + name, usage, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_root_command_has_one_option_per_flag_with_single_dash_aliases()
    {
        System.CommandLine.RootCommand root = FlanneldCommandLine.CreateRootCommand();
        foreach (string name in FlanneldCommandLine.FlagNames)
        {
            System.CommandLine.Option option = Assert.Single(root.Options, o => o.Name == "--" + name);
            Assert.Contains("-" + name, option.Aliases);
        }

        Assert.DoesNotContain(root.Options, o => o is System.CommandLine.VersionOption);
    }

    [Fact]
    public void ToString_masks_the_etcd_password()
    {
        string text = Parse("--etcd-password=hunter2").ToString();
        Assert.DoesNotContain("hunter2", text, StringComparison.Ordinal);
        Assert.Contains("etcdPassword:********", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Traffic_options_come_from_the_resync_and_fully_random_flags()
    {
        Flannel.Agent.Traffic.TrafficManagerOptions traffic = Parse("--iptables-resync=12", "--ip-masq-fully-random-disable").ToTrafficManagerOptions();
        Assert.True(traffic.DisableFullyRandom);
        Assert.Equal(new Flannel.Agent.Traffic.TrafficManagerOptions(), Parse().ToTrafficManagerOptions());
    }
}
