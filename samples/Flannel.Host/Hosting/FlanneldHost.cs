using System.Net;
using Flannel.Agent;
using Flannel.Agent.Health;
using Flannel.Host.Cli;
using Flannel.Netlink;
using Flannel.Store.Kube;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Flannel.Host.Hosting;

/// <summary>Builds and runs flanneld's generic host from the parsed command line.</summary>
internal static class FlanneldHost
{
    /// <summary>flanneld's shutdown grace for the health server and the agent.</summary>
    private static readonly TimeSpan ShutdownGrace = TimeSpan.FromSeconds(3);

    /// <summary>Runs until SIGINT/SIGTERM; returns 1 when the agent failed (as flanneld exits 1), else 0.</summary>
    public static async Task<int> RunAsync(FlanneldOptions options, CancellationToken cancellationToken)
    {
        using StartupCollectionDeferral deferral = StartupCollectionDeferral.Begin();
        using IHost host = Build(options);
        FlannelHealth health = host.Services.GetRequiredService<FlannelHealth>();
        deferral.EndWhen(
            host.Services.GetRequiredService<FlannelAgent>().SnapshotProgrammed,
            // From the factory, not as ILogger<T>: DI would build that generic type at run time, which in the
            // native flanneld is start-up work (runtime type loading).
            host.Services.GetRequiredService<ILoggerFactory>().CreateLogger<StartupCollectionDeferral>());
        StartupPageRelease.ReleaseWhen(
            host.Services.GetRequiredService<FlannelAgent>().SnapshotProgrammed,
            host.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(StartupPageRelease).FullName!));
        try
        {
            await host.RunAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is Microsoft.Extensions.Options.OptionsValidationException or InvalidOperationException)
        {
            // Validation failures and startup errors: flanneld prints the reason and exits 1.
            await Console.Error.WriteLineAsync($"flanneld: {ex.Message}").ConfigureAwait(false);
            return 1;
        }

        return health.Failures.Count > 0 ? 1 : 0;
    }

    /// <summary>
    /// Builds the host (exposed for tests): a plain generic host, with <c>--healthz-port</c> also running Kestrel
    /// (core: no HTTPS, no endpoint routing) on <c>--healthz-ip</c> with one small request pipeline for the health
    /// endpoints and <c>/metrics</c> (<see cref="ConfigureHealthServer"/>).
    /// </summary>
    internal static IHost Build(FlanneldOptions options, Action<IServiceCollection>? overrides = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        IHostBuilder builder = new HostBuilder()
            .UseContentRoot(AppContext.BaseDirectory)
            .ConfigureServices(services => ConfigureServices(services, options, overrides));
        if (options.HealthzPort != 0)
        {
            builder.ConfigureWebHost(
                web => ConfigureHealthServer(web, options.HealthzIP, options.HealthzPort, options.StatusHttp),
                // flanneld's flags are its only configuration: no ASPNETCORE_* variables, no URLs but --healthz-ip.
                static web => web.SuppressEnvironmentConfiguration = true);
        }

        IHost host = builder.Build();
        if (options.HealthzPort != 0)
        {
            MetricsEndpoint.Listen(host.Services);
        }

        return host;
    }

    /// <summary>
    /// The health server (also used by tests): Kestrel bound to <paramref name="address"/>:<paramref name="port"/>
    /// only, its services, and the pipeline: <c>/metrics</c>, <c>/readyz</c>, <c>/healthz</c>, <c>/status</c> when
    /// <paramref name="status"/> (<c>--status-http</c>), and Go's 404 for anything else.
    /// </summary>
    internal static void ConfigureHealthServer(IWebHostBuilder web, IPAddress address, int port, bool status)
    {
        ArgumentNullException.ThrowIfNull(web);
        web.UseKestrelCore().ConfigureKestrel(kestrel => kestrel.Listen(address, port));
        web.ConfigureServices(static services =>
        {
            services.AddHealthChecks().AddFlannelReadiness();
            MetricsEndpoint.AddServices(services);
        });
        web.Configure(app =>
        {
            MetricsEndpoint.Use(app);
            HealthEndpoints.Use(app, status);
        });
    }

    private static void ConfigureServices(IServiceCollection services, FlanneldOptions options, Action<IServiceCollection>? overrides)
    {
        services.AddLogging(logging => ConfigureLogging(logging, options.Verbosity));
        services.Configure<HostOptions>(o =>
        {
            o.ShutdownTimeout = ShutdownGrace;
            o.BackgroundServiceExceptionBehavior = BackgroundServiceExceptionBehavior.StopHost;
        });

        IFlannelBuilder flannel = services.AddFlannel();

        // The process is started in the node's network namespace (e.g. `ip netns exec NODE flanneld ...`), so
        // netlink in the current namespace is the node's.
        flannel.UseNetlink(_ => RtNetlink.Open());
        flannel.UseSysctl(_ => ProcSysctl.Current);
        flannel.AddVxlanBackend();
        flannel.AddHostGwBackend();
        flannel.AddAllocBackend();
        flannel.AddExtensionBackend();

        // flannel's only host-side WireGuard knob is $WIREGUARD_KEY_FILE, which the backend reads itself. Several
        // flanneld on one machine each need a private /var/run/wireguard (a mount namespace): see docs/backends.md.
        flannel.AddWireGuardBackend();
        AddSubnetStore(flannel, options);
        flannel.UseTrafficManager();
        flannel.UseFabricProbes();
        flannel.AddAgent(o => ApplyAgentOptions(o, options));
        services.AddHostedService<SystemdNotifier>();
        overrides?.Invoke(services);
    }

    /// <summary>The store flanneld's flags name: etcd by default, the Kubernetes API with --kube-subnet-mgr (also used by <c>flanneld doctor</c>).</summary>
    internal static void AddSubnetStore(IFlannelBuilder flannel, FlanneldOptions options)
    {
        if (options.KubeSubnetManager)
        {
            flannel.AddKubeSubnetStore(o =>
            {
                o.ApiUrl = NullIfEmpty(options.KubeApiUrl);
                o.KubeconfigFile = NullIfEmpty(options.KubeConfigFile);
                o.AnnotationPrefix = options.KubeAnnotationPrefix;
                o.NetConfigPath = options.NetConfigPath;
                o.SetNodeNetworkUnavailable = options.SetNodeNetworkUnavailable;
            });
        }
        else
        {
            flannel.AddEtcdSubnetStore(o =>
            {
                o.Endpoints = options.EtcdEndpoints;
                o.Prefix = options.EtcdPrefix;
                o.KeyFile = NullIfEmpty(options.EtcdKeyFile);
                o.CertFile = NullIfEmpty(options.EtcdCertFile);
                o.CaFile = NullIfEmpty(options.EtcdCAFile);
                o.Username = NullIfEmpty(options.EtcdUsername);
                o.Password = NullIfEmpty(options.EtcdPassword);
                o.SubnetLeaseRenewMargin = options.SubnetLeaseRenewMarginMinutes;
            });
        }
    }

    /// <summary>Maps flanneld's flags onto the agent's options.</summary>
    internal static void ApplyAgentOptions(FlannelAgentOptions agent, FlanneldOptions options)
    {
        agent.SubnetFile = options.SubnetFile;
        agent.IpMasq = options.IPMasq;
        agent.IpMasqFullyRandomDisable = options.IPMasqFullyRandomDisable;
        foreach (string iface in options.Interfaces)
        {
            agent.Iface.Add(iface);
        }

        foreach (string regex in options.InterfaceRegexes)
        {
            agent.IfaceRegex.Add(regex);
        }

        agent.IfaceCanReach = options.InterfaceCanReach?.ToString();
        agent.PublicIP = options.PublicIP?.ToString();
        agent.PublicIPv6 = options.PublicIPv6?.ToString();
        agent.SubnetLeaseRenewMarginMinutes = options.SubnetLeaseRenewMarginMinutes;
        agent.IptablesResync = options.IptablesResyncPeriod;
        agent.IptablesForwardRules = options.IptablesForwardRules;
        agent.IpBlackholeRoute = options.IPBlackholeRoute;
        agent.StatusSocket = options.StatusSocket;
        agent.Probes.Enabled = options.ProbeInterval > TimeSpan.Zero;
        if (agent.Probes.Enabled)
        {
            agent.Probes.Interval = options.ProbeInterval;
        }

        agent.Probes.Timeout = options.ProbeTimeout;
        agent.Probes.PerPeerMetrics = options.ProbePerPeerMetrics;
    }

    /// <summary>Console logging to stderr (as klog does), one line per entry; <c>-v</c> ≥ 2 adds debug, ≥ 4 trace.</summary>
    internal static void ConfigureLogging(ILoggingBuilder logging, int verbosity)
    {
        logging.ClearProviders();
        logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
            o.UseUtcTimestamp = true;
        });
        logging.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        logging.SetMinimumLevel(verbosity switch
        {
            >= 4 => LogLevel.Trace,
            >= 2 => LogLevel.Debug,
            _ => LogLevel.Information,
        });
        logging.AddFilter("Microsoft", LogLevel.Warning);
        logging.AddFilter("Grpc", LogLevel.Warning);
        logging.AddFilter("System.Net.Http", LogLevel.Warning);
    }

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;
}
