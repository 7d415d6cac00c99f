using System.ComponentModel.DataAnnotations;

namespace Flannel.Store.Etcd;

/// <summary>
/// Options of the etcd subnet store. The names follow flanneld's flags (<c>--etcd-endpoints</c>,
/// <c>--etcd-prefix</c>, <c>--etcd-keyfile</c>, <c>--etcd-certfile</c>, <c>--etcd-cafile</c>,
/// <c>--etcd-username</c>, <c>--etcd-password</c>, <c>--subnet-lease-renew-margin</c>).
/// </summary>
public sealed class EtcdSubnetStoreOptions
{
    /// <summary>The default key prefix, as in flanneld.</summary>
    public const string DefaultPrefix = "/coreos.com/network";

    /// <summary>The default endpoint, as in flanneld.</summary>
    public const string DefaultEndpoints = "http://127.0.0.1:2379";

    /// <summary>
    /// A comma-separated list of etcd endpoints (<c>--etcd-endpoints</c>), e.g.
    /// <c>https://10.0.0.1:2379,https://10.0.0.2:2379</c>. Calls fail over between them. A bare
    /// <c>host</c> or <c>host:port</c> is accepted (port 2379 by default). Default <c>http://127.0.0.1:2379</c>.
    /// </summary>
    [Required]
    public string Endpoints { get; set; } = DefaultEndpoints;

    /// <summary>The key prefix (<c>--etcd-prefix</c>); the config lives at <c>&lt;prefix&gt;/config</c>. Default <c>/coreos.com/network</c>.</summary>
    [Required]
    public string Prefix { get; set; } = DefaultPrefix;

    /// <summary>The client private key, PEM (<c>--etcd-keyfile</c>). Set together with <see cref="CertFile"/>.</summary>
    public string? KeyFile { get; set; }

    /// <summary>The client certificate, PEM (<c>--etcd-certfile</c>). Set together with <see cref="KeyFile"/>.</summary>
    public string? CertFile { get; set; }

    /// <summary>
    /// The CA bundle that signed etcd's server certificate, PEM (<c>--etcd-cafile</c>). When set, only this CA is
    /// trusted; otherwise the system's trust store is used.
    /// </summary>
    public string? CaFile { get; set; }

    /// <summary>The etcd user name (<c>--etcd-username</c>), for an etcd with authentication enabled.</summary>
    public string? Username { get; set; }

    /// <summary>The etcd password (<c>--etcd-password</c>).</summary>
    public string? Password { get; set; }

    /// <summary>
    /// Minutes before the lease expires at which it is renewed (<c>--subnet-lease-renew-margin</c>), 1..1439.
    /// Default 60: with the 24 h lease, the store sends a KeepAlive 23 h after the last one.
    /// </summary>
    [Range(1, 1439)]
    public int SubnetLeaseRenewMargin { get; set; } = 60;

    /// <summary>
    /// The TTL of the etcd lease every subnet key is attached to. Default 24 h (flannel's <c>subnetTTL</c>);
    /// tests shorten it. 2 s to 365 days.
    /// </summary>
    public TimeSpan LeaseTtl { get; set; } = TimeSpan.FromHours(24);

    /// <summary>The deadline of each etcd request, 50 ms to 10 min. Default 10 s.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// While a watch has heard nothing for this long, it asks etcd for a progress notification (etcd 3.4+ answers at
    /// once, with no events). Default 2 s; 100 ms to 10 min, and shorter than <see cref="WatchTimeout"/>.
    /// </summary>
    public TimeSpan WatchProgressInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// A watch that hears nothing at all from its etcd member for this long (not even the answer to a progress
    /// request) is given up, and the next one opens on the next endpoint: a member that is silently partitioned
    /// away keeps its TCP connection looking healthy. Default 5 s (200 ms to 1 h); a watch that is not created within
    /// 3 s (or this, if shorter) is given up too.
    /// </summary>
    public TimeSpan WatchTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How many lost creation races are retried quickly (with jitter) before the store backs off to slower
    /// retries; it never gives up while not cancelled. Default 10, flannel's <c>raceRetries</c>.
    /// </summary>
    [Range(1, 1000)]
    public int RaceRetries { get; set; } = 10;
}
