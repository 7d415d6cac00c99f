using System.Net;
using Flannel.Store.Kube.Tests.ApiDouble;
using Flannel.Subnets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Flannel.Testing;

namespace Flannel.Store.Kube.Tests;

/// <summary>
/// A <see cref="KubeSubnetStore"/> built through <c>AddFlannel().AddKubeSubnetStore(…)</c>, talking through
/// KubernetesClient to a <see cref="KubeApiServerDouble"/>, with net-conf.json in a temporary directory and every log
/// record captured.
/// </summary>
public sealed class KubeStoreHarness : IAsyncDisposable
{
    public const string IPv4NetConf = """{"Network":"10.244.0.0/16","EnableNFTables":false,"Backend":{"Type":"vxlan"}}""";

    public const string DualStackNetConf =
        """{"Network":"10.244.0.0/16","IPv6Network":"fd00:10:244::/56","EnableIPv6":true,"Backend":{"Type":"vxlan"}}""";

    private readonly string _directory;
    private readonly ServiceProvider _provider;

    private KubeStoreHarness(KubeApiServerDouble server, string directory, ServiceProvider provider, FakeLogCollector logs)
    {
        Server = server;
        _directory = directory;
        _provider = provider;
        Logs = logs;
        Store = provider.GetRequiredService<KubeSubnetStore>();
    }

    public KubeApiServerDouble Server { get; }

    public KubeSubnetStore Store { get; }

    public FakeLogCollector Logs { get; }

    public IServiceProvider Services => _provider;

    public static CancellationToken Timeout(int seconds = 30)
    {
        CancellationTokenSource cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(TimeSpan.FromSeconds(seconds));
        return cts.Token;
    }

    public static async Task<KubeStoreHarness> StartAsync(
        string netConf = IPv4NetConf, string nodeName = "node-a", Action<KubeSubnetStoreOptions>? configure = null, TimeProvider? time = null,
        KubeApiServerDouble? server = null)
    {
        server ??= await KubeApiServerDouble.StartAsync();
        string directory = Directory.CreateTempSubdirectory("flannel-kube-").FullName;
        string netConfPath = Path.Combine(directory, "net-conf.json");
        await File.WriteAllTextAsync(netConfPath, netConf);

        ServiceCollection services = new();
        FakeLogCollector logs = new();
        services.AddLogging(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(new FakeLoggerProvider(logs)));
        if (time is not null)
        {
            services.AddSingleton(time);
        }

        services.AddFlannel().AddKubeSubnetStore(o =>
        {
            o.ApiUrl = server.Url;
            o.NodeName = nodeName;
            o.NetConfigPath = netConfPath;
            o.PatchRetryInterval = TimeSpan.FromMilliseconds(50);
            o.PatchRetryTimeout = TimeSpan.FromSeconds(5);
            o.WatchMinBackoff = TimeSpan.FromMilliseconds(20);
            o.WatchMaxBackoff = TimeSpan.FromMilliseconds(200);
            configure?.Invoke(o);
        });
        ServiceProvider provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });
        return new KubeStoreHarness(server, directory, provider, logs);
    }

    public static LeaseAttributes VxlanAttributes(string publicIP, string mac, string? publicIPv6 = null, string? mac6 = null) => new()
    {
        PublicIP = IPAddress.Parse(publicIP),
        PublicIPv6 = publicIPv6 is null ? null : IPAddress.Parse(publicIPv6),
        BackendType = "vxlan",
        BackendData = $"{{\"VNI\":1,\"VtepMAC\":\"{mac}\"}}",
        BackendV6Data = mac6 is null ? null : $"{{\"VNI\":1,\"VtepMAC\":\"{mac6}\"}}",
    };

    public IEnumerable<string> Warnings() =>
        Logs.GetSnapshot().Where(r => r.Level >= LogLevel.Warning).Select(r => r.Message);

    /// <summary>Waits until <paramref name="condition"/> holds, polling; fails the test after a generous timeout.</summary>
    public static Task WaitUntilAsync(Func<bool> condition, string what) => Wait.UntilAsync(condition, what);

    public async ValueTask DisposeAsync()
    {
        await _provider.DisposeAsync();
        await Server.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}

/// <summary>Pulls items from an async stream one at a time with a timeout, so a missing event fails instead of hanging.</summary>
public sealed class StreamReader<T> : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop;
    private readonly IAsyncEnumerator<T> _enumerator;
    private Task<bool>? _pending;

    /// <param name="open">Opens the stream with the token that <see cref="DisposeAsync"/> cancels.</param>
    public StreamReader(Func<CancellationToken, IAsyncEnumerable<T>> open)
    {
        _stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        _enumerator = open(_stop.Token).GetAsyncEnumerator(_stop.Token);
    }

    /// <summary>Starts waiting for the next item without awaiting it (so a test can act while the stream is waiting).</summary>
    public Task<bool> Begin() => _pending ??= _enumerator.MoveNextAsync().AsTask();

    public async Task<T> NextAsync(int seconds = 20)
    {
        Task<bool> next = Begin();
        Task finished = await Task.WhenAny(next, Task.Delay(TimeSpan.FromSeconds(seconds), CancellationToken.None));
        if (finished != next)
        {
            Assert.Fail($"no item within {seconds} s");
        }

        _pending = null;
        Assert.True(await next, "the stream ended");
        return _enumerator.Current;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            if (_pending is not null)
            {
                await _pending.WaitAsync(TimeSpan.FromSeconds(5));
            }
        }
        catch (Exception)
        {
            // Cancelled with the test token: expected.
        }

        await _enumerator.DisposeAsync();
        _stop.Dispose();
    }
}
