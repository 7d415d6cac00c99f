using System.Collections;
using System.Text.Json;
using Flannel.Agent.Doctor;
using Flannel.Agent.Probing;
using Flannel.Agent.Status;
using Flannel.Configuration;
using Flannel.Host.Cli;
using Flannel.Host.Hosting;
using Flannel.Host.Status;
using Flannel.Netlink;
using Flannel.Subnets;
using Flannel.Agent.Traffic;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Flannel.Host.Doctor;

/// <summary>
/// <c>flanneld doctor</c>: offline checks of this node (run it inside the node's network namespace, as root), no agent
/// needed. The leases come from the running agent's status socket when one answers, else from the subnet store named
/// by flanneld's own flags (<c>--etcd-endpoints</c>…, <c>--kube-subnet-mgr</c>). Exit code 1 when any check finds an
/// error, 0 otherwise (warnings included), 2 for a usage error.
/// </summary>
internal static class DoctorCommand
{
    public const string Name = "doctor";

    private static readonly TimeSpan StoreTimeout = TimeSpan.FromSeconds(10);

    public const string Usage = """
        Usage: flanneld doctor [-o table|json] [--socket PATH] [--probe=false] [--sample N] [--probe-timeout DURATION] [flanneld flags]
          Checks this node for the usual causes of "pods on node A cannot reach pods on node B" and prints, for each
          finding, its severity, the evidence and the command that fixes it. Nothing is changed.
          -o string                output format: table or json (default "table")
          -socket string           the running agent's status socket, where the leases are read first (default "/run/flannel/flannel.sock")
          -probe                   probe the vxlan port of a sample of peers (ICMP and UDP; needs CAP_NET_RAW) (default true)
          -sample int              how many peers to probe at most (default 8)
          -probe-timeout duration  how long each probe waits (default 1s)
          flanneld's flags         the store to read leases from when no agent answers, and --subnet-file
        Exit code: 0 no error found, 1 errors found, 2 usage error.

        """;

    public static async Task<int> RunAsync(IReadOnlyList<string> args, IDictionary environment, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        SubcommandFlags flags;
        FlanneldOptions flanneld;
        var options = new DoctorOptions();
        bool json;
        string socket;
        try
        {
            flags = SubcommandFlags.Parse(args, ["o", "output", "socket", "sample", "probe-timeout"], ["probe"], passUnknown: true);
            if (flags.HelpRequested)
            {
                await output.WriteAsync(Usage).ConfigureAwait(false);
                return 0;
            }

            json = flags.JsonOutput();
            socket = flags.Get("socket", StatusSocketOptions.DefaultPath);
            options.Probe = flags.GetBool("probe", true);
            options.SampleSize = flags.GetInt("sample", 8, 1, 10_000);
            options.ProbeTimeout = flags.GetDuration("probe-timeout", TimeSpan.FromSeconds(1));
            flanneld = FlanneldCommandLine.Parse(flags.Rest, environment);
            options.SubnetFile = flanneld.SubnetFile;
        }
        catch (Exception e) when (e is ArgumentException or FlanneldCommandLineException)
        {
            await error.WriteLineAsync(e.Message).ConfigureAwait(false);
            await error.WriteAsync(Usage).ConfigureAwait(false);
            return 2;
        }

        DoctorLeases leases = await ReadLeasesAsync(socket, flanneld, error, cancellationToken).ConfigureAwait(false);
        DoctorReport report;
        await using (RtNetlink netlink = RtNetlink.Open())
        {
            using var echo = new IcmpEchoProber();
            report = await FabricDoctor.RunAsync(leases, options, netlink, ProcessCommandRunner.Instance, echo, cancellationToken).ConfigureAwait(false);
        }

        await output.WriteAsync(json ? report.ToJson() + "\n" : report.ToText()).ConfigureAwait(false);
        return report.ExitCode;
    }

    /// <summary>The agent's socket first (it knows this node's lease for sure), then the store.</summary>
    private static async Task<DoctorLeases> ReadLeasesAsync(string socket, FlanneldOptions flanneld, TextWriter error, CancellationToken cancellationToken)
    {
        string? socketProblem = null;
        if (File.Exists(socket))
        {
            try
            {
                FabricStatus status = await StatusSocketClient.GetStatusAsync(socket, TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
                return DoctorLeases.FromStatus(status, socket);
            }
            catch (StatusUnavailableException e)
            {
                socketProblem = e.Message;
            }
        }
        else
        {
            socketProblem = $"no agent socket at {socket}";
        }

        string storeName = flanneld.KubeSubnetManager ? "the Kubernetes API" : $"etcd {flanneld.EtcdEndpoints} (prefix {flanneld.EtcdPrefix})";
        try
        {
            return await ReadStoreAsync(flanneld, storeName, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            string reason = e is OperationCanceledException ? $"no answer within {StoreTimeout.TotalSeconds:0} s" : e.Message;
            string problem = $"{socketProblem}; {storeName}: {reason}";
            await error.WriteLineAsync($"flanneld doctor: no leases ({problem}); checking this node only").ConfigureAwait(false);
            return new DoctorLeases { Source = $"nowhere: {problem}", Leases = [] };
        }
    }

    private static async Task<DoctorLeases> ReadStoreAsync(FlanneldOptions flanneld, string storeName, CancellationToken cancellationToken)
    {
        var services = new ServiceCollection();
        services.AddLogging(b => b.SetMinimumLevel(LogLevel.Warning));
        IFlannelBuilder flannel = services.AddFlannel();
        FlanneldHost.AddSubnetStore(flannel, flanneld);
        await using ServiceProvider provider = services.BuildServiceProvider();
        ISubnetStore store = provider.GetRequiredService<ISubnetStore>();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(StoreTimeout);
        NetworkConfig config = await store.GetNetworkConfigAsync(deadline.Token).ConfigureAwait(false);
        IReadOnlyList<Lease> leases = [];
        await foreach (LeaseWatchResult item in store.WatchLeasesAsync(deadline.Token).ConfigureAwait(false))
        {
            leases = item.Snapshot ?? [];
            break;
        }

        return new DoctorLeases
        {
            Source = storeName,
            Network = config.Network,
            BackendType = config.BackendType,
            BackendMtuOverride = ReadBackendMtu(config),
            Leases = leases,
            DeleteLeaseCommand = flanneld.KubeSubnetManager
                ? null
                : key => $"ETCDCTL_API=3 etcdctl --endpoints={flanneld.EtcdEndpoints} del {flanneld.EtcdPrefix.TrimEnd('/')}/subnets/{key}",
        };
    }

    private static int? ReadBackendMtu(NetworkConfig config)
    {
        if (string.IsNullOrEmpty(config.Backend))
        {
            return null;
        }

        try
        {
            using JsonDocument backend = JsonDocument.Parse(config.Backend);
            if (backend.RootElement.ValueKind == JsonValueKind.Object)
            {
                foreach (JsonProperty property in backend.RootElement.EnumerateObject())
                {
                    if (string.Equals(property.Name, "MTU", StringComparison.OrdinalIgnoreCase) && property.Value.TryGetInt32(out int mtu))
                    {
                        return mtu;
                    }
                }
            }
        }
        catch (JsonException)
        {
            // The backend rejects it at startup with a clear error; the doctor just does not know the override.
        }

        return null;
    }
}
