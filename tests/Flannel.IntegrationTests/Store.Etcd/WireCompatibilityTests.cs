using System.Net;
using Flannel.Configuration;
using Flannel.Subnets;

namespace Flannel.Store.Etcd.Tests;

/// <summary>What Go flanneld and etcdctl see of our keys, and what we read of theirs.</summary>
public sealed class WireCompatibilityTests(EtcdFixture fixture) : IClassFixture<EtcdFixture>
{
    [Fact]
    public async Task Lease_written_by_the_store_reads_back_with_etcdctl_byte_identical_to_flannels_example()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        await EtcdTest.PutConfigAsync(server, prefix);
        using var store = EtcdTest.Store(server, prefix);
        CancellationToken ct = EtcdTest.Timeout();

        Lease lease = await store.AcquireLeaseAsync(
            new LeaseRequest { Attributes = EtcdTest.Vxlan("192.168.64.3"), PreviousSubnet = IPNetwork.Parse("10.5.7.0/24") }, ct);

        Assert.Equal(IPNetwork.Parse("10.5.7.0/24"), lease.Subnet);
        string key = prefix + "/subnets/10.5.7.0-24";
        Assert.Equal([key], await EtcdTest.ListKeysAsync(server, prefix));
        Assert.Equal(EtcdTest.FlannelExampleValue, await EtcdTest.GetValueAsync(server, key));

        // Attached to an etcd lease with flannel's 24 h TTL.
        long etcdLease = await EtcdTest.GetEtcdLeaseAsync(server, key);
        Assert.NotEqual(0, etcdLease);
        long ttl = await EtcdTest.GetTtlAsync(server, etcdLease);
        Assert.InRange(ttl, 86_000, 86_400);
    }

    [Fact]
    public async Task Leases_written_with_etcdctl_in_flannels_format_are_read_including_dual_stack_keys()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        await EtcdTest.PutConfigAsync(server, prefix);
        await EtcdTest.PutAsync(server, prefix + "/subnets/10.5.3.0-24", EtcdTest.FlannelExampleValue);
        await EtcdTest.PutAsync(server, prefix + "/subnets/10.5.4.0-24&fd00:10:244:4::-64",
            """{"PublicIP":"192.168.64.4","PublicIPv6":"fd00::4","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:04"},"BackendV6Data":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:06"}}""");
        await EtcdTest.PutAsync(server, prefix + "/subnets/10.5.5.0-24", """{"PublicIP":"192.168.64.5","PublicIPv6":null,"BackendType":"host-gw"}""");
        using var store = EtcdTest.Store(server, prefix);
        CancellationToken ct = EtcdTest.Timeout();

        await using var watch = store.WatchLeasesAsync(ct).GetAsyncEnumerator(ct);
        LeaseWatchResult first = await EtcdTest.NextAsync(watch);

        Assert.True(first.IsSnapshot);
        Assert.Equal(3, first.Snapshot!.Count);
        Lease v4 = first.Snapshot.Single(l => l.Subnet == IPNetwork.Parse("10.5.3.0/24"));
        Assert.Equal(EtcdTest.Vxlan("192.168.64.3"), v4.Attributes);
        Assert.Null(v4.IPv6Subnet);
        Lease dual = first.Snapshot.Single(l => l.Subnet == IPNetwork.Parse("10.5.4.0/24"));
        Assert.Equal(IPNetwork.Parse("fd00:10:244:4::/64"), dual.IPv6Subnet);
        Assert.Equal(IPAddress.Parse("fd00::4"), dual.Attributes.PublicIPv6);
        Assert.Equal("""{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:06"}""", dual.Attributes.BackendV6Data);
        Assert.Equal("10.5.4.0-24&fd00:10:244:4::-64", dual.Key);
        Lease hostGw = first.Snapshot.Single(l => l.Subnet == IPNetwork.Parse("10.5.5.0/24"));
        Assert.Equal("host-gw", hostGw.Attributes.BackendType);
        Assert.Null(hostGw.Attributes.BackendData);

        // Written without an etcd lease: reservations.
        Assert.All(first.Snapshot, l => Assert.True(l.IsReservation));
    }
}
