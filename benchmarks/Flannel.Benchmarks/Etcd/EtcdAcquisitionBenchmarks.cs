using System.Globalization;
using System.Net;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Flannel.Store.Etcd;
using Flannel.Subnets;
using Flannel.Testing.Etcd;
using Microsoft.Extensions.Options;

namespace Flannel.Benchmarks.Etcd;

/// <summary>
/// 1,000 nodes acquiring their lease from a real etcd (Debian etcd-server 3.4, data on tmpfs), one after
/// another (Agents = 1) or 32 at a time (Agents = 32). Every node is its own store (its own etcd lease), sharing
/// one gRPC channel, in a 10.0.0.0/8 network with /24 subnets. Each acquisition lists the leases, picks a subnet
/// with SubnetAllocator, grants an etcd lease and creates the key with a create-if-absent transaction; a lost race
/// is retried. After each iteration the lost races ("conflicts") and the acquisitions that needed a retry are
/// printed.
/// </summary>
/// <remarks>
/// Run (needs etcd on PATH):
/// <c>dotnet run -c Release --project benchmarks/Flannel.Benchmarks -- --filter '*EtcdAcquisition*'</c>
/// </remarks>
[Config(typeof(EtcdAcquisitionBenchmarks.OneShotInProcess))]
public class EtcdAcquisitionBenchmarks
{
    /// <summary>
    /// In process (etcd is started once by the global setup), one invocation per iteration: each iteration is a
    /// whole fresh network of 1,000 acquisitions, 1 warm-up and 3 measured.
    /// </summary>
    private sealed class OneShotInProcess : ManualConfig
    {
        public OneShotInProcess() => AddJob(Job.Dry
            .WithToolchain(new InProcessEmitToolchain(TimeSpan.FromMinutes(20), logOutput: true))
            .WithStrategy(RunStrategy.Monitoring)
            .WithLaunchCount(1)
            .WithWarmupCount(1)
            .WithIterationCount(3)
            .WithInvocationCount(1)
            .WithUnrollFactor(1)
            .WithId("OneShotInProcess"));
    }

    private const int Nodes = 1000;
    private EtcdServer? _server;
    private EtcdConnection? _connection;
    private EtcdSubnetStoreOptions? _options;
    private EtcdSubnetStore[] _stores = [];

    /// <summary>How many nodes acquire at the same time.</summary>
    [Params(1, 32)]
    public int Agents { get; set; }

    [GlobalSetup]
    public void StartEtcd()
    {
        _server = EtcdServer.StartAsync().GetAwaiter().GetResult();
    }

    [IterationSetup]
    public void NewNetwork()
    {
        // A fresh prefix per iteration: every run starts from an empty network.
        string prefix = "/bench-" + Guid.NewGuid().ToString("N")[..8] + "/network";
        _server!.EtcdctlAsync("put", prefix + "/config", """{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}""").GetAwaiter().GetResult().EnsureSuccess();
        _options = new EtcdSubnetStoreOptions { Endpoints = _server.ClientUrl, Prefix = prefix };
        _connection?.Dispose();
        _connection = new EtcdConnection(_options);
        _stores = Enumerable.Range(0, Nodes)
            .Select(_ => new EtcdSubnetStore(_connection, ownsConnection: false, _options, logger: null, timeProvider: null))
            .ToArray();

        // Read the config once per store outside the measurement, as an agent does at startup.
        foreach (EtcdSubnetStore store in _stores)
        {
            store.GetNetworkConfigAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
        }
    }

    [Benchmark(OperationsPerInvoke = Nodes)]
    public async Task AcquireThousandLeases()
    {
        int next = -1;
        await Task.WhenAll(Enumerable.Range(0, Agents).Select(_ => Task.Run(async () =>
        {
            int node;
            while ((node = Interlocked.Increment(ref next)) < Nodes)
            {
                var attributes = new LeaseAttributes
                {
                    PublicIP = new IPAddress([198, 18, (byte)(node >> 8), (byte)node]),
                    BackendType = "vxlan",
                    BackendData = string.Create(CultureInfo.InvariantCulture, $$"""{"VNI":1,"VtepMAC":"0e:00:00:00:{{node >> 8:x2}}:{{node & 0xff:x2}}"}"""),
                };
                await _stores[node].AcquireLeaseAsync(new LeaseRequest { Attributes = attributes }, CancellationToken.None);
            }
        })));
    }

    [IterationCleanup]
    public void Report()
    {
        long conflicts = _stores.Sum(s => s.Statistics.Conflicts);
        long retried = _stores.Sum(s => s.Statistics.AcquisitionsWithRetries);
        long acquired = _stores.Sum(s => s.Statistics.Acquisitions);
        long transient = _stores.Sum(s => s.Statistics.TransientErrors);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"// etcd acquisition: agents={Agents} acquired={acquired} conflicts={conflicts} acquisitions-with-retries={retried} transient-errors={transient} max-retries-one-node={_stores.Max(s => s.Statistics.Conflicts)}"));
        foreach (EtcdSubnetStore store in _stores)
        {
            store.Dispose();
        }
    }

    [GlobalCleanup]
    public void StopEtcd()
    {
        _connection?.Dispose();
        _server?.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
