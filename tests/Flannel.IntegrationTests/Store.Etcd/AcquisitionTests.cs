using System.Net;
using Flannel.Subnets;

namespace Flannel.Store.Etcd.Tests;

public sealed class AcquisitionTests(EtcdFixture fixture) : IClassFixture<EtcdFixture>
{
    [Fact]
    public async Task Fifty_agents_acquiring_at_once_get_fifty_distinct_subnets()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();

        // 63 subnets for 50 agents: most random picks collide, so the create-if-absent races are real.
        await EtcdTest.PutConfigAsync(server, prefix, """{"Network":"10.6.0.0/18","Backend":{"Type":"vxlan"}}""");
        CancellationToken ct = EtcdTest.Timeout(90);
        var stores = Enumerable.Range(1, 50).Select(_ => EtcdTest.Store(server, prefix)).ToList();
        try
        {
            Lease[] leases = await Task.WhenAll(stores.Select((s, i) =>
                s.AcquireLeaseAsync(EtcdTest.Request($"198.18.0.{i + 1}", $"aa:00:00:00:00:{i + 1:x2}"), ct).AsTask()));

            Assert.Equal(50, leases.Select(l => l.Subnet).Distinct().Count());
            List<string> keys = await EtcdTest.ListKeysAsync(server, prefix);
            Assert.Equal(50, keys.Count);
            for (int i = 0; i < leases.Length; i++)
            {
                string? value = await EtcdTest.GetValueAsync(server, prefix + "/subnets/" + leases[i].Key);
                Assert.Equal(LeaseJson.Serialize(EtcdTest.Vxlan($"198.18.0.{i + 1}", $"aa:00:00:00:00:{i + 1:x2}")), value);
            }

            long conflicts = stores.Sum(s => s.Statistics.Conflicts);
            TestContext.Current.SendDiagnosticMessage($"50 agents: {conflicts} lost races");
        }
        finally
        {
            stores.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task A_full_network_fails_with_a_clear_out_of_subnets_error()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();

        // A /22 with /24 subnets: SubnetMin 10.8.1.0 .. SubnetMax 10.8.3.0, three leases.
        await EtcdTest.PutConfigAsync(server, prefix, """{"Network":"10.8.0.0/22"}""");
        using var store = EtcdTest.Store(server, prefix);
        CancellationToken ct = EtcdTest.Timeout();
        for (int i = 1; i <= 3; i++)
        {
            using var other = EtcdTest.Store(server, prefix);
            await other.AcquireLeaseAsync(EtcdTest.Request($"198.18.1.{i}"), ct);
        }

        var ex = await Assert.ThrowsAsync<OutOfSubnetsException>(() => store.AcquireLeaseAsync(EtcdTest.Request("198.18.1.9"), ct).AsTask());
        Assert.Contains("out of subnets", ex.Message);
    }

    [Fact]
    public async Task Restarted_node_reuses_its_lease_by_public_ip_with_new_attributes()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        await EtcdTest.PutConfigAsync(server, prefix);
        CancellationToken ct = EtcdTest.Timeout();
        Lease first;
        using (var before = EtcdTest.Store(server, prefix))
        {
            first = await before.AcquireLeaseAsync(EtcdTest.Request("198.18.2.1", "aa:00:00:00:00:01"), ct);
        }

        long oldEtcdLease = await EtcdTest.GetEtcdLeaseAsync(server, prefix + "/subnets/" + first.Key);
        using var after = EtcdTest.Store(server, prefix);
        Lease second = await after.AcquireLeaseAsync(EtcdTest.Request("198.18.2.1", "aa:00:00:00:00:02"), ct);

        Assert.Equal(first.Subnet, second.Subnet);
        Assert.True(second.Revision > first.Revision);
        Assert.Contains("aa:00:00:00:00:02", await EtcdTest.GetValueAsync(server, prefix + "/subnets/" + second.Key));
        long newEtcdLease = await EtcdTest.GetEtcdLeaseAsync(server, prefix + "/subnets/" + second.Key);
        Assert.NotEqual(oldEtcdLease, newEtcdLease);

        // The previous run's etcd lease held nothing else, so it was revoked instead of leaking for 24 h.
        Assert.Equal(-1, await EtcdTest.GetTtlAsync(server, oldEtcdLease));
    }

    [Fact]
    public async Task A_node_whose_old_lease_no_longer_fits_the_config_gets_a_new_one_and_the_old_key_is_deleted()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        await EtcdTest.PutConfigAsync(server, prefix);
        CancellationToken ct = EtcdTest.Timeout();
        Lease old;
        using (var before = EtcdTest.Store(server, prefix))
        {
            old = await before.AcquireLeaseAsync(new LeaseRequest { Attributes = EtcdTest.Vxlan("198.18.7.1"), PreviousSubnet = IPNetwork.Parse("10.5.7.0/24") }, ct);
        }

        await EtcdTest.PutConfigAsync(server, prefix, """{"Network":"10.5.0.0/16","SubnetMin":"10.5.100.0"}""");
        using var after = EtcdTest.Store(server, prefix);
        Lease renewed = await after.AcquireLeaseAsync(EtcdTest.Request("198.18.7.1"), ct);

        Assert.Equal(IPNetwork.Parse("10.5.7.0/24"), old.Subnet);
        Assert.True(renewed.Subnet!.Value.BaseAddress.GetAddressBytes()[2] >= 100);
        Assert.Equal([prefix + "/subnets/" + renewed.Key], await EtcdTest.ListKeysAsync(server, prefix));
    }

    [Fact]
    public async Task Previous_subnet_from_subnet_env_is_reused_when_free()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        await EtcdTest.PutConfigAsync(server, prefix);
        using var store = EtcdTest.Store(server, prefix);
        using var other = EtcdTest.Store(server, prefix);
        CancellationToken ct = EtcdTest.Timeout();
        await other.AcquireLeaseAsync(new LeaseRequest { Attributes = EtcdTest.Vxlan("198.18.3.2"), PreviousSubnet = IPNetwork.Parse("10.5.20.0/24") }, ct);

        Lease free = await store.AcquireLeaseAsync(new LeaseRequest { Attributes = EtcdTest.Vxlan("198.18.3.1"), PreviousSubnet = IPNetwork.Parse("10.5.21.0/24") }, ct);
        using var third = EtcdTest.Store(server, prefix);
        Lease taken = await third.AcquireLeaseAsync(new LeaseRequest { Attributes = EtcdTest.Vxlan("198.18.3.3"), PreviousSubnet = IPNetwork.Parse("10.5.20.0/24") }, ct);

        Assert.Equal(IPNetwork.Parse("10.5.21.0/24"), free.Subnet);
        Assert.NotEqual(IPNetwork.Parse("10.5.20.0/24"), taken.Subnet);
    }

    [Fact]
    public async Task A_reservation_is_never_leased_to_another_node_and_its_owner_reuses_it_without_a_ttl()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        await EtcdTest.PutConfigAsync(server, prefix, """{"Network":"10.9.0.0/22"}""");
        string reserved = prefix + "/subnets/10.9.2.0-24";
        await EtcdTest.PutAsync(server, reserved, """{"PublicIP":"198.18.4.1","PublicIPv6":null}""");
        CancellationToken ct = EtcdTest.Timeout();

        // Two other nodes fill the other two subnets, even when asking for the reserved one; a third finds none.
        var others = new List<Lease>();
        for (int i = 2; i <= 3; i++)
        {
            using var other = EtcdTest.Store(server, prefix);
            others.Add(await other.AcquireLeaseAsync(
                new LeaseRequest { Attributes = EtcdTest.Vxlan($"198.18.4.{i}"), PreviousSubnet = IPNetwork.Parse("10.9.2.0/24") }, ct));
        }

        using (var late = EtcdTest.Store(server, prefix))
        {
            await Assert.ThrowsAsync<OutOfSubnetsException>(() => late.AcquireLeaseAsync(EtcdTest.Request("198.18.4.9"), ct).AsTask());
        }

        Assert.DoesNotContain(IPNetwork.Parse("10.9.2.0/24"), others.Select(l => l.Subnet));

        // The owner gets it, its attributes are published, and no TTL is attached.
        using var owner = EtcdTest.Store(server, prefix);
        Lease mine = await owner.AcquireLeaseAsync(EtcdTest.Request("198.18.4.1", "aa:00:00:00:04:01"), ct);
        Assert.Equal(IPNetwork.Parse("10.9.2.0/24"), mine.Subnet);
        Assert.True(mine.IsReservation);
        Assert.Equal(LeaseJson.Serialize(EtcdTest.Vxlan("198.18.4.1", "aa:00:00:00:04:01")), await EtcdTest.GetValueAsync(server, reserved));
        Assert.Equal(0, await EtcdTest.GetEtcdLeaseAsync(server, reserved));

        // Renewing or revoking a reservation leaves it a reservation.
        Lease renewed = await owner.RenewLeaseAsync(mine, ct);
        Assert.Null(renewed.Expiration);
        await owner.RevokeLeaseAsync(renewed, ct);
        Assert.NotNull(await EtcdTest.GetValueAsync(server, reserved));
        Assert.Equal(0, await EtcdTest.GetEtcdLeaseAsync(server, reserved));
    }

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

    [Fact]
    public async Task Revoke_deletes_the_key_only_while_it_is_still_ours()
    {
        var server = await fixture.GetAsync();
        string prefix = EtcdTest.NewPrefix();
        await EtcdTest.PutConfigAsync(server, prefix);
        using var store = EtcdTest.Store(server, prefix);
        CancellationToken ct = EtcdTest.Timeout();
        Lease lease = await store.AcquireLeaseAsync(EtcdTest.Request("198.18.6.1"), ct);
        string key = prefix + "/subnets/" + lease.Key;

        // Someone else now owns the key: revoking our stale view must not delete it.
        await EtcdTest.PutAsync(server, key, LeaseJson.Serialize(EtcdTest.Vxlan("198.18.6.2")));
        await store.RevokeLeaseAsync(lease, ct);
        Assert.Contains("198.18.6.2", await EtcdTest.GetValueAsync(server, key));

        using var again = EtcdTest.Store(server, prefix);
        Lease second = await again.AcquireLeaseAsync(EtcdTest.Request("198.18.6.3"), ct);
        await again.RevokeLeaseAsync(second, ct);
        Assert.Null(await EtcdTest.GetValueAsync(server, prefix + "/subnets/" + second.Key));
    }
}
