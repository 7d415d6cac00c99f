using System.Net;
using Flannel.Subnets;

namespace Flannel.Store.Etcd.Tests;

/// <summary>
/// The store against a real etcd where only the wire can show it: a dead endpoint in the list. The acquisition logic
/// itself is tested over the in-memory etcd (tests/Flannel.Store.Etcd.Tests/Store).
/// </summary>
public sealed class EndpointFailoverTests(EtcdFixture fixture) : IClassFixture<EtcdFixture>
{
    [Fact]
    public async Task Endpoints_fail_over_past_a_dead_member()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        await EtcdTest.PutConfigAsync(server, prefix);
        using var dead = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        dead.Start();
        int deadPort = ((IPEndPoint)dead.LocalEndpoint).Port;
        dead.Stop();
        using var store = EtcdTest.Store(server, prefix, o => o.Endpoints = $"http://127.0.0.1:{deadPort},{server.ClientUrl}");
        CancellationToken ct = EtcdTest.Timeout();

        for (int i = 0; i < 5; i++)
        {
            Lease lease = await store.AcquireLeaseAsync(EtcdTest.Request("198.18.5.1"), ct);
            Assert.NotNull(lease.Subnet);
        }
    }
}
