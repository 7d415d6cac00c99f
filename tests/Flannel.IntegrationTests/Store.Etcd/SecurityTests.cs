using Flannel.Subnets;

namespace Flannel.Store.Etcd.Tests;

/// <summary>An etcd that serves TLS only and requires client certificates signed by its CA.</summary>
public sealed class TlsTests(TlsEtcdFixture fixture) : IClassFixture<TlsEtcdFixture>
{
    [Fact]
    public async Task The_store_connects_with_ca_cert_and_key()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        await EtcdTest.PutConfigAsync(server, prefix);
        using var store = EtcdTest.Store(server, prefix);
        CancellationToken ct = EtcdTest.Timeout();

        Lease lease = await store.AcquireLeaseAsync(EtcdTest.Request("198.18.40.1"), ct);
        await using var watch = store.WatchLeasesAsync(ct).GetAsyncEnumerator(ct);

        // The watch starts from the acquisition's list (made before our lease existed); our lease follows as an event.
        Assert.Empty((await EtcdTest.NextAsync(watch)).Snapshot!);
        Assert.Equal(lease.Key, Assert.Single((await EtcdTest.NextAsync(watch)).Events).Lease.Key);
        Assert.NotNull(await EtcdTest.GetValueAsync(server, prefix + "/subnets/" + lease.Key));
    }

    [Fact]
    public async Task Without_the_client_certificate_the_store_fails_with_a_clear_error()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        await EtcdTest.PutConfigAsync(server, prefix);
        var log = new ListLogger();
        using var store = EtcdTest.Store(server, prefix, o =>
        {
            o.CertFile = null;
            o.KeyFile = null;
        }, new ListLogger<EtcdSubnetStore>(log));

        var ex = await Assert.ThrowsAsync<EtcdConnectionException>(async () =>
        {
            try
            {
                await store.GetNetworkConfigAsync(EtcdTest.Timeout(10));
            }
            catch (OperationCanceledException) when (log is not null)
            {
                Assert.Fail(string.Join("\n", log.Entries.Select(e => e.Message)));
            }
        });
        Assert.Contains("requires a client certificate", ex.Message);
        Assert.Contains("Set CertFile and KeyFile", ex.Message);
    }

    [Fact]
    public async Task A_server_not_signed_by_the_configured_ca_is_rejected()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        var log = new ListLogger();
        using var store = EtcdTest.Store(server, prefix, o => o.CaFile = server.Certificates!.OtherCaFile, new ListLogger<EtcdSubnetStore>(log));

        var ex = await Assert.ThrowsAsync<EtcdConnectionException>(async () =>
        {
            try
            {
                await store.GetNetworkConfigAsync(EtcdTest.Timeout(10));
            }
            catch (OperationCanceledException) when (log is not null)
            {
                Assert.Fail(string.Join("\n", log.Entries.Select(e => e.Message)));
            }
        });
        Assert.Contains("TLS handshake", ex.Message);
    }
}

/// <summary>An etcd with authentication enabled, and a user limited to one prefix.</summary>
public sealed class AuthTests(AuthEtcdFixture fixture) : IClassFixture<AuthEtcdFixture>
{
    [Fact]
    public async Task The_store_works_with_a_username_and_password_limited_to_its_prefix()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        await server.AddUserAsync("flannel" + prefix.GetHashCode().ToString("x"), "s3cret", prefix, TestContext.Current.CancellationToken);
        await EtcdTest.PutConfigAsync(server, prefix);
        using var store = EtcdTest.Store(server, prefix, o =>
        {
            o.Username = "flannel" + prefix.GetHashCode().ToString("x");
            o.Password = "s3cret";
            o.LeaseTtl = TimeSpan.FromSeconds(3);
        });
        CancellationToken ct = EtcdTest.Timeout();

        Lease lease = await store.AcquireLeaseAsync(EtcdTest.Request("198.18.41.1"), ct);
        await using var watch = store.WatchLeasesAsync(ct).GetAsyncEnumerator(ct);
        Assert.Empty((await EtcdTest.NextAsync(watch)).Snapshot!);
        Assert.Equal(lease.Key, Assert.Single((await EtcdTest.NextAsync(watch)).Events).Lease.Key); // the watch works under auth
        await foreach (Lease renewed in store.KeepLeaseAsync(lease, ct))
        {
            Assert.Equal(lease.Subnet, renewed.Subnet);
            break;
        }

        await store.RevokeLeaseAsync(lease, ct);
        Assert.Null(await EtcdTest.GetValueAsync(server, prefix + "/subnets/" + lease.Key));
    }

    [Fact]
    public async Task A_wrong_password_fails_with_a_clear_error()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        var log = new ListLogger();
        using var store = EtcdTest.Store(server, prefix, o =>
        {
            o.Username = "root";
            o.Password = "wrong";
        }, new ListLogger<EtcdSubnetStore>(log));

        var ex = await Assert.ThrowsAsync<EtcdConnectionException>(async () =>
        {
            try
            {
                await store.GetNetworkConfigAsync(EtcdTest.Timeout(10));
            }
            catch (OperationCanceledException) when (log is not null)
            {
                Assert.Fail(string.Join("\n", log.Entries.Select(e => e.Message)));
            }
        });
        Assert.Contains("rejected the credentials", ex.Message);
    }

    [Fact]
    public async Task No_credentials_against_an_auth_etcd_fails_with_a_clear_error()
    {
        var server = await fixture.GetAsync();
        var log = new ListLogger();
        using var store = EtcdTest.Store(server, EtcdTest.NewPrefix(), logger: new ListLogger<EtcdSubnetStore>(log));

        var ex = await Assert.ThrowsAsync<EtcdConnectionException>(async () =>
        {
            try
            {
                await store.GetNetworkConfigAsync(EtcdTest.Timeout(10));
            }
            catch (OperationCanceledException) when (log is not null)
            {
                Assert.Fail(string.Join("\n", log.Entries.Select(e => e.Message)));
            }
        });
        Assert.Contains("Username", ex.Message);
    }
}
