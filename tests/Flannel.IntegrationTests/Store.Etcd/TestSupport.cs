using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Flannel.Subnets;
using Flannel.Testing;
using Flannel.Testing.Etcd;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Flannel.Store.Etcd.Tests;

/// <summary>One real etcd per test class, started on first use (tests use distinct prefixes to stay apart).</summary>
public class EtcdFixture : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private EtcdServer? _server;

    protected virtual EtcdServerOptions ServerOptions => new();

    public async Task<EtcdServer> GetAsync()
    {
        Privileged.RequireExecutable("etcd");
        Privileged.RequireExecutable("etcdctl");
        await _gate.WaitAsync();
        try
        {
            return _server ??= await EtcdServer.StartAsync(ServerOptions);
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }
}

public sealed class TlsEtcdFixture : EtcdFixture
{
    protected override EtcdServerOptions ServerOptions => new() { Tls = true };
}

public sealed class AuthEtcdFixture : EtcdFixture
{
    protected override EtcdServerOptions ServerOptions => new() { Auth = true };
}

/// <summary>Collects log lines so tests can check what the store told the operator.</summary>
public sealed class ListLogger : ILogger
{
    public ConcurrentQueue<(LogLevel Level, EventId Id, string Message)> Entries { get; } = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Entries.Enqueue((logLevel, eventId, formatter(state, exception)));

    public string Dump() => string.Join("\n", Entries.Select(e => $"{e.Level} {e.Id.Id}: {e.Message}"));

    public bool Contains(string text) => Entries.Any(e => e.Message.Contains(text, StringComparison.Ordinal));
}

internal static class EtcdTest
{
    public const string FlannelExampleValue = """{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}""";

    public static string NewPrefix() => "/fnt-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)) + "/network";

    public static CancellationToken Timeout(int seconds = 60)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(TimeSpan.FromSeconds(seconds));
        return cts.Token;
    }

    public static async Task PutAsync(EtcdServer server, string key, string value) =>
        (await server.EtcdctlAsync("put", key, "--", value)).EnsureSuccess();

    public static async Task PutConfigAsync(EtcdServer server, string prefix, string json = """{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}""") =>
        await PutAsync(server, prefix + "/config", json);

    public static async Task<string?> GetValueAsync(EtcdServer server, string key)
    {
        string output = (await server.EtcdctlAsync("get", key, "--print-value-only")).EnsureSuccess().StandardOutput;
        return output.Length == 0 ? null : output.TrimEnd('\n');
    }

    /// <summary>The etcd lease a key is attached to (0 for none), from <c>etcdctl get -w json</c>.</summary>
    public static async Task<long> GetEtcdLeaseAsync(EtcdServer server, string key)
    {
        string json = (await server.EtcdctlAsync("get", key, "-w", "json")).EnsureSuccess().StandardOutput;
        using JsonDocument doc = JsonDocument.Parse(json);
        JsonElement kvs = doc.RootElement.GetProperty("kvs");
        JsonElement kv = kvs[0];
        return kv.TryGetProperty("lease", out JsonElement lease) ? lease.GetInt64() : 0;
    }

    public static async Task<long> GetTtlAsync(EtcdServer server, long etcdLease)
    {
        string json = (await server.EtcdctlAsync("lease", "timetolive", etcdLease.ToString("x"), "-w", "json")).EnsureSuccess().StandardOutput;
        using JsonDocument doc = JsonDocument.Parse(json);
        return doc.RootElement.GetProperty("ttl").GetInt64();
    }

    public static async Task<List<string>> ListKeysAsync(EtcdServer server, string prefix)
    {
        string output = (await server.EtcdctlAsync("get", prefix + "/subnets/", "--prefix", "--keys-only")).EnsureSuccess().StandardOutput;
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
    }

    public static EtcdSubnetStoreOptions Options(EtcdServer server, string prefix, Action<EtcdSubnetStoreOptions>? configure = null)
    {
        var options = new EtcdSubnetStoreOptions
        {
            Endpoints = server.ClientUrl,
            Prefix = prefix,
            RequestTimeout = TimeSpan.FromSeconds(5),
        };
        if (server.Certificates is { } tls)
        {
            options.CaFile = tls.CaFile;
            options.CertFile = tls.ClientCertFile;
            options.KeyFile = tls.ClientKeyFile;
        }

        configure?.Invoke(options);
        return options;
    }

    public static EtcdSubnetStore Store(EtcdServer server, string prefix, Action<EtcdSubnetStoreOptions>? configure = null, ILogger<EtcdSubnetStore>? logger = null) =>
        new(Microsoft.Extensions.Options.Options.Create(Options(server, prefix, configure)), logger);

    public static LeaseAttributes Vxlan(string publicIP, string mac = "c6:d2:32:6f:8f:44") => new()
    {
        PublicIP = IPAddress.Parse(publicIP),
        BackendType = "vxlan",
        BackendData = $$"""{"VNI":1,"VtepMAC":"{{mac}}"}""",
    };

    public static LeaseRequest Request(string publicIP, string mac = "c6:d2:32:6f:8f:44") => new() { Attributes = Vxlan(publicIP, mac) };

    /// <summary>Reads watch items until <paramref name="predicate"/> holds for the accumulated view.</summary>
    public static async Task<LeaseWatchResult> NextAsync(IAsyncEnumerator<LeaseWatchResult> watch)
    {
        Assert.True(await watch.MoveNextAsync(), "the watch ended");
        return watch.Current;
    }
}

/// <summary>A typed logger wrapper over <see cref="ListLogger"/>.</summary>
public sealed class ListLogger<T>(ListLogger inner) : ILogger<T>
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        inner.Log(logLevel, eventId, state, exception, formatter);
}
