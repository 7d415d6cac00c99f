using System.Collections.Concurrent;
using System.Net;
using Flannel.Subnets;
using Microsoft.Extensions.Logging;

namespace Flannel.Store.Etcd.Tests.Store;

/// <summary>Every log record of the stores of one test, for assertions on what the operator is told.</summary>
internal sealed class StoreLog : ILogger<EtcdSubnetStore>
{
    public ConcurrentQueue<(LogLevel Level, int EventId, string Message)> Entries { get; } = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Entries.Enqueue((logLevel, eventId.Id, formatter(state, exception)));

    public bool Contains(string text) => Entries.Any(e => e.Message.Contains(text, StringComparison.Ordinal));

    public int Count(int eventId) => Entries.Count(e => e.EventId == eventId);

    public override string ToString() => string.Join("\n", Entries.Select(e => $"{e.Level} {e.EventId}: {e.Message}"));
}

/// <summary>Lease attributes and requests as flannel's vxlan backend writes them.</summary>
internal static class Leases
{
    public static LeaseAttributes Vxlan(string publicIP, string mac = "c6:d2:32:6f:8f:44") => new()
    {
        PublicIP = IPAddress.Parse(publicIP),
        BackendType = "vxlan",
        BackendData = $$"""{"VNI":1,"VtepMAC":"{{mac}}"}""",
    };

    public static LeaseRequest Request(string publicIP, string mac = "c6:d2:32:6f:8f:44", string? previous = null) =>
        new() { Attributes = Vxlan(publicIP, mac), PreviousSubnet = previous is null ? null : IPNetwork.Parse(previous) };

    public static string Json(string publicIP, string mac = "c6:d2:32:6f:8f:44") => LeaseJson.Serialize(Vxlan(publicIP, mac));
}
