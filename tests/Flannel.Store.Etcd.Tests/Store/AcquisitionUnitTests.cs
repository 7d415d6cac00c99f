using System.Net;
using Etcdserverpb;
using Lease = Flannel.Subnets.Lease;
using Flannel.Subnets;

namespace Flannel.Store.Etcd.Tests.Store;

/// <summary>The store's acquisition logic over the in-memory etcd: flannel's order, compare-and-swap, races, retries.</summary>
public sealed class AcquisitionUnitTests
{
    [Fact]
    public async Task Fifty_agents_acquiring_at_once_get_fifty_distinct_subnets_written_in_flannels_format()
    {
        using var etcd = new FakeEtcd();

        // 63 subnets for 50 agents: most random picks collide, so the create-if-absent races are real.
        await etcd.PutConfigAsync("""{"Network":"10.6.0.0/18","Backend":{"Type":"vxlan"}}""");
        var stores = Enumerable.Range(1, 50).Select(_ => etcd.Store()).ToList();

        Lease[] leases = await Task.WhenAll(stores.Select((s, i) =>
            s.AcquireLeaseAsync(Leases.Request($"198.18.0.{i + 1}", $"aa:00:00:00:00:{i + 1:x2}"), FakeEtcd.Timeout()).AsTask()));

        Assert.Equal(50, leases.Select(l => l.Subnet).Distinct().Count());
        Assert.Equal(50, (await etcd.ListKeysAsync()).Count);
        for (int i = 0; i < leases.Length; i++)
        {
            Mvccpb.KeyValue kv = (await etcd.GetAsync(FakeEtcd.Key(leases[i].Key)))!;
            Assert.Equal(Leases.Json($"198.18.0.{i + 1}", $"aa:00:00:00:00:{i + 1:x2}"), kv.Value.ToStringUtf8());
            Assert.NotEqual(0, kv.Lease);
            Assert.Equal(kv.ModRevision, leases[i].Revision);
        }
    }

    [Fact]
    public async Task A_dual_stack_lease_created_meanwhile_with_the_same_IPv4_subnet_makes_the_creation_lose_its_race()
    {
        using var etcd = new FakeEtcd();
        await etcd.PutConfigAsync("""{"Network":"10.6.0.0/18","EnableIPv6":true,"IPv6Network":"fd00:6::/58","Backend":{"Type":"vxlan"}}""");
        var racing = new InterceptingEtcd(etcd.Etcd);
        string? interloper = null;

        // Between the store's list and its create, another node creates a lease for the same IPv4 subnet with
        // another IPv6 subnet: a different key, so create-if-absent alone would let both nodes have 10.6.X.0/24.
        racing.BeforeTxn = async txn =>
        {
            if (interloper is null && txn.Compare[0].Target == Compare.Types.CompareTarget.Version)
            {
                string chosen = txn.Compare[0].Key.ToStringUtf8();
                string ipv4 = chosen[..chosen.IndexOf('&', StringComparison.Ordinal)];
                interloper = ipv4 + (chosen.EndsWith("&fd00:6:0:3f::-64", StringComparison.Ordinal) ? "&fd00:6:0:3e::-64" : "&fd00:6:0:3f::-64");
                await etcd.PutAsync(interloper, Leases.Json("198.18.9.9"));
            }
        };
        EtcdSubnetStore store = etcd.Store(etcd: racing);

        Lease lease = await store.AcquireLeaseAsync(Leases.Request("198.18.9.1"), FakeEtcd.Timeout());

        Assert.NotNull(interloper);
        Assert.NotNull(lease.IPv6Subnet);
        Assert.DoesNotContain(FakeEtcd.Key(SubnetKey.Format(lease.Subnet, ipv6Subnet: null)) + "&", interloper, StringComparison.Ordinal);
        Assert.Equal(2, (await etcd.ListKeysAsync()).Count);
        Assert.Equal(1, store.Statistics.Conflicts);
    }

    [Fact]
    public async Task A_lost_creation_race_is_retried_with_fresh_state_and_never_overwrites_the_winner()
    {
        using var etcd = new FakeEtcd();
        await etcd.PutConfigAsync("""{"Network":"10.8.0.0/22"}""");
        var racing = new InterceptingEtcd(etcd.Etcd);
        int raced = 0;

        // Between the store's list and its create, another node creates the very key the store chose.
        racing.BeforeTxn = async txn =>
        {
            if (txn.Compare.Count == 1 && txn.Compare[0].Target == Compare.Types.CompareTarget.Version && Interlocked.Increment(ref raced) == 1)
            {
                await etcd.PutAsync(txn.Compare[0].Key.ToStringUtf8(), Leases.Json("198.18.9.9"));
            }
        };
        EtcdSubnetStore store = etcd.Store(etcd: racing);

        Lease lease = await store.AcquireLeaseAsync(Leases.Request("198.18.9.1"), FakeEtcd.Timeout());

        Assert.Equal(2, (await etcd.ListKeysAsync()).Count);
        Assert.Equal(Leases.Json("198.18.9.1"), await etcd.GetValueAsync(FakeEtcd.Key(lease.Key)));
        Assert.Single((await etcd.ListKeysAsync()).Where(k => k != FakeEtcd.Key(lease.Key)), k => etcd.GetValueAsync(k).Result == Leases.Json("198.18.9.9"));
        Assert.Equal(1, store.Statistics.Conflicts);
        Assert.True(etcd.Log.Contains("Lost the race for"));
    }

    [Fact]
    public async Task An_unavailable_member_is_retried_until_etcd_answers()
    {
        using var etcd = new FakeEtcd();
        await etcd.PutConfigAsync();
        EtcdSubnetStore store = etcd.Store();
        await store.GetNetworkConfigAsync(FakeEtcd.Timeout());
        etcd.Etcd.FailNextCalls(3);

        Lease lease = await store.AcquireLeaseAsync(Leases.Request("198.18.9.2"), FakeEtcd.Timeout());

        Assert.NotNull(await etcd.GetValueAsync(FakeEtcd.Key(lease.Key)));
        Assert.True(store.Statistics.TransientErrors >= 1);
        Assert.True(etcd.Log.Contains("retrying in"));
    }

    [Fact]
    public async Task A_full_network_fails_with_a_clear_out_of_subnets_error()
    {
        using var etcd = new FakeEtcd();

        // A /22 with /24 subnets: SubnetMin 10.8.1.0 .. SubnetMax 10.8.3.0, three leases.
        await etcd.PutConfigAsync("""{"Network":"10.8.0.0/22"}""");
        for (int i = 1; i <= 3; i++)
        {
            await etcd.Store().AcquireLeaseAsync(Leases.Request($"198.18.1.{i}"), FakeEtcd.Timeout());
        }

        var ex = await Assert.ThrowsAsync<OutOfSubnetsException>(() => etcd.Store().AcquireLeaseAsync(Leases.Request("198.18.1.9"), FakeEtcd.Timeout()).AsTask());
        Assert.Contains("out of subnets", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_restarted_node_reuses_its_lease_by_public_ip_and_revokes_the_old_etcd_lease()
    {
        using var etcd = new FakeEtcd();
        await etcd.PutConfigAsync();
        Lease first = await etcd.Store().AcquireLeaseAsync(Leases.Request("198.18.2.1", "aa:00:00:00:00:01"), FakeEtcd.Timeout());
        long oldEtcdLease = (await etcd.GetAsync(FakeEtcd.Key(first.Key)))!.Lease;

        Lease second = await etcd.Store().AcquireLeaseAsync(Leases.Request("198.18.2.1", "aa:00:00:00:00:02"), FakeEtcd.Timeout());

        Assert.Equal(first.Subnet, second.Subnet);
        Assert.True(second.Revision > first.Revision);
        Mvccpb.KeyValue kv = (await etcd.GetAsync(FakeEtcd.Key(second.Key)))!;
        Assert.Equal(Leases.Json("198.18.2.1", "aa:00:00:00:00:02"), kv.Value.ToStringUtf8());
        Assert.NotEqual(oldEtcdLease, kv.Lease);

        // The previous run's etcd lease held nothing else, so it was revoked instead of leaking for 24 h.
        Assert.Equal(-1, await etcd.TimeToLiveAsync(oldEtcdLease));
    }

    [Fact]
    public async Task An_old_lease_that_no_longer_fits_the_config_is_deleted_and_a_new_one_leased()
    {
        using var etcd = new FakeEtcd();
        await etcd.PutConfigAsync();
        Lease old = await etcd.Store().AcquireLeaseAsync(Leases.Request("198.18.7.1", previous: "10.5.7.0/24"), FakeEtcd.Timeout());

        await etcd.PutConfigAsync("""{"Network":"10.5.0.0/16","SubnetMin":"10.5.100.0"}""");
        Lease renewed = await etcd.Store().AcquireLeaseAsync(Leases.Request("198.18.7.1"), FakeEtcd.Timeout());

        Assert.Equal(IPNetwork.Parse("10.5.7.0/24"), old.Subnet);
        Assert.True(renewed.Subnet!.Value.BaseAddress.GetAddressBytes()[2] >= 100);
        Assert.Equal([FakeEtcd.Key(renewed.Key)], await etcd.ListKeysAsync());
    }

    [Fact]
    public async Task The_previous_subnet_is_reused_when_free_and_never_when_taken()
    {
        using var etcd = new FakeEtcd();
        await etcd.PutConfigAsync();
        await etcd.Store().AcquireLeaseAsync(Leases.Request("198.18.3.2", previous: "10.5.20.0/24"), FakeEtcd.Timeout());

        Lease free = await etcd.Store().AcquireLeaseAsync(Leases.Request("198.18.3.1", previous: "10.5.21.0/24"), FakeEtcd.Timeout());
        Lease taken = await etcd.Store().AcquireLeaseAsync(Leases.Request("198.18.3.3", previous: "10.5.20.0/24"), FakeEtcd.Timeout());

        Assert.Equal(IPNetwork.Parse("10.5.21.0/24"), free.Subnet);
        Assert.NotEqual(IPNetwork.Parse("10.5.20.0/24"), taken.Subnet);
    }

    [Fact]
    public async Task A_reservation_is_never_leased_to_another_node_and_its_owner_reuses_it_without_a_ttl()
    {
        using var etcd = new FakeEtcd();
        await etcd.PutConfigAsync("""{"Network":"10.9.0.0/22"}""");
        string reserved = FakeEtcd.Key("10.9.2.0-24");
        await etcd.PutAsync(reserved, """{"PublicIP":"198.18.4.1","PublicIPv6":null}""");

        // Two other nodes fill the other two subnets, even when asking for the reserved one; a third finds none.
        var others = new List<Lease>();
        for (int i = 2; i <= 3; i++)
        {
            others.Add(await etcd.Store().AcquireLeaseAsync(Leases.Request($"198.18.4.{i}", previous: "10.9.2.0/24"), FakeEtcd.Timeout()));
        }

        await Assert.ThrowsAsync<OutOfSubnetsException>(() => etcd.Store().AcquireLeaseAsync(Leases.Request("198.18.4.9"), FakeEtcd.Timeout()).AsTask());
        Assert.DoesNotContain(IPNetwork.Parse("10.9.2.0/24"), others.Select(l => l.Subnet));

        // The owner gets it, its attributes are published, and no TTL is attached.
        EtcdSubnetStore owner = etcd.Store();
        Lease mine = await owner.AcquireLeaseAsync(Leases.Request("198.18.4.1", "aa:00:00:00:04:01"), FakeEtcd.Timeout());
        Assert.Equal(IPNetwork.Parse("10.9.2.0/24"), mine.Subnet);
        Assert.True(mine.IsReservation);
        Assert.Equal(Leases.Json("198.18.4.1", "aa:00:00:00:04:01"), await etcd.GetValueAsync(reserved));
        Assert.Equal(0, (await etcd.GetAsync(reserved))!.Lease);

        // Renewing or revoking a reservation leaves it a reservation.
        Lease renewed = await owner.RenewLeaseAsync(mine, FakeEtcd.Timeout());
        Assert.Null(renewed.Expiration);
        await owner.RevokeLeaseAsync(renewed, FakeEtcd.Timeout());
        Assert.Equal(0, (await etcd.GetAsync(reserved))!.Lease);
    }

    [Fact]
    public async Task Revoke_deletes_the_key_only_while_it_is_still_ours()
    {
        using var etcd = new FakeEtcd();
        await etcd.PutConfigAsync();
        EtcdSubnetStore store = etcd.Store();
        Lease lease = await store.AcquireLeaseAsync(Leases.Request("198.18.6.1"), FakeEtcd.Timeout());
        string key = FakeEtcd.Key(lease.Key);

        // Someone else now owns the key: revoking our stale view must not delete it.
        await etcd.PutAsync(key, Leases.Json("198.18.6.2"));
        await store.RevokeLeaseAsync(lease, FakeEtcd.Timeout());
        Assert.Equal(Leases.Json("198.18.6.2"), await etcd.GetValueAsync(key));

        EtcdSubnetStore again = etcd.Store();
        Lease second = await again.AcquireLeaseAsync(Leases.Request("198.18.6.3"), FakeEtcd.Timeout());
        await again.RevokeLeaseAsync(second, FakeEtcd.Timeout());
        Assert.Null(await etcd.GetValueAsync(FakeEtcd.Key(second.Key)));
    }

    [Fact]
    public async Task Node_hints_return_the_attributes_published_for_the_public_ip()
    {
        using var etcd = new FakeEtcd();
        await etcd.PutAsync(FakeEtcd.Key("10.5.3.0-24"), Leases.Json("198.18.8.1", "aa:bb:cc:00:00:01"));

        NodeHints hints = await etcd.Store().GetNodeHintsAsync(IPAddress.Parse("198.18.8.1"), FakeEtcd.Timeout());
        NodeHints none = await etcd.Store().GetNodeHintsAsync(IPAddress.Parse("198.18.8.2"), FakeEtcd.Timeout());

        Assert.Equal(Leases.Vxlan("198.18.8.1", "aa:bb:cc:00:00:01"), hints.PreviousAttributes);
        Assert.Null(none.PreviousAttributes);
    }

    [Fact]
    public async Task A_missing_config_is_waited_for_with_the_etcdctl_command_in_the_log()
    {
        using var etcd = new FakeEtcd();
        EtcdSubnetStore store = etcd.Store();
        ValueTask<Flannel.Configuration.NetworkConfig> reading = store.GetNetworkConfigAsync(FakeEtcd.Timeout());
        await FakeEtcd.WaitUntilAsync(() => etcd.Log.Count(4002) >= 1, "the store reports the missing config");
        Assert.True(etcd.Log.Contains("etcdctl --endpoints=fake://in-memory put /coreos.com/network/config"), etcd.Log.ToString());

        await etcd.PutConfigAsync("""{"Network":"10.5.0.0/16"}""");

        Assert.Equal(IPNetwork.Parse("10.5.0.0/16"), (await reading).Network);
    }

    [Fact]
    public async Task An_invalid_config_is_reported_with_flannels_message()
    {
        using var etcd = new FakeEtcd();
        await etcd.PutConfigAsync("""{"Network":"10.5.0.0/16","SubnetLen":31}""");

        var ex = await Assert.ThrowsAsync<Flannel.Configuration.NetworkConfigException>(() => etcd.Store().GetNetworkConfigAsync(FakeEtcd.Timeout()).AsTask());
        Assert.Equal("SubnetLen must be less than /31", ex.Message);
    }
}
