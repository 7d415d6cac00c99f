using Etcdserverpb;
using Google.Protobuf;

namespace Flannel.Store.Etcd.Tests.Store;

/// <summary>The connection makes its gRPC channel when it is first needed (issue 13), but checks its TLS files at once.</summary>
public sealed class ConnectionUnitTests
{
    [Fact]
    public async Task The_channel_is_made_by_the_first_call_not_by_the_constructor()
    {
        // Port 1 on loopback: nothing listens, the call fails after trying; what matters is when the channel appears.
        using var connection = new EtcdConnection(new EtcdSubnetStoreOptions { Endpoints = "http://127.0.0.1:1", RequestTimeout = TimeSpan.FromSeconds(2) });
        Assert.False(connection.ChannelCreated);

        await Assert.ThrowsAnyAsync<Exception>(() => connection.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("/coreos.com/network/config") }, FakeEtcd.Timeout()));

        Assert.True(connection.ChannelCreated);
    }

    [Fact]
    public void A_client_certificate_that_cannot_be_read_fails_the_constructor_with_both_file_names()
    {
        var ex = Assert.Throws<EtcdConnectionException>(() => new EtcdConnection(new EtcdSubnetStoreOptions
        {
            Endpoints = "https://127.0.0.1:1",
            CertFile = "/nonexistent/etcd-client.pem",
            KeyFile = "/nonexistent/etcd-client-key.pem",
        }));

        Assert.Contains("CertFile '/nonexistent/etcd-client.pem'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("KeyFile '/nonexistent/etcd-client-key.pem'", ex.Message, StringComparison.Ordinal);
    }
}
