using System.Collections.Concurrent;
using System.Net;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Flannel.Agent;
using Flannel.Backends;
using Flannel.Configuration;
using Flannel.Agent.Health;
using Flannel.Subnets;

namespace Flannel.Agent.Tests;

/// <summary>An ordered record of what the agent did, shared by the doubles.</summary>
internal sealed class CallLog
{
    private readonly ConcurrentQueue<string> _calls = new();

    public IReadOnlyList<string> Calls => [.. _calls];

    public void Add(string call) => _calls.Enqueue(call);
}

/// <summary>
/// A scripted subnet store: the test decides when config reads fail, what lease is handed out, and drives the lease
/// watch and the keep-lease stream through channels (an exception in the watch channel makes the watch fail).
/// </summary>
internal sealed class ScriptedSubnetStore(CallLog log) : ISubnetStore, ISubnetStoreStatus
{
    private Channel<object> _watch = Channel.CreateUnbounded<object>();

    public NetworkConfig Config { get; set; } = new()
    {
        Network = IPNetwork.Parse("10.244.0.0/16"),
        SubnetLen = 24,
        BackendType = "fake",
    };

    public int ConfigFailuresLeft { get; set; }

    public int WatchStarts;

    public IPNetwork LeaseSubnet { get; set; } = IPNetwork.Parse("10.244.7.0/24");

    public LeaseRequest? LastRequest { get; private set; }

    public NodeHints Hints { get; set; } = NodeHints.None;

    public IPAddress? HintsAskedFor { get; private set; }

    public bool Revoked { get; private set; }

    public string? NotReadyReason { get; set; }

    public Channel<Lease> KeepChannel { get; } = Channel.CreateUnbounded<Lease>();

    public ValueTask<NetworkConfig> GetNetworkConfigAsync(CancellationToken cancellationToken)
    {
        log.Add("config");
        if (ConfigFailuresLeft > 0)
        {
            ConfigFailuresLeft--;
            throw new InvalidOperationException("etcd unavailable");
        }

        return new(Config);
    }

    public ValueTask<NodeHints> GetNodeHintsAsync(IPAddress? publicIP, CancellationToken cancellationToken)
    {
        log.Add("hints");
        HintsAskedFor = publicIP;
        return new(Hints);
    }

    public ValueTask<Lease> AcquireLeaseAsync(LeaseRequest request, CancellationToken cancellationToken)
    {
        log.Add("acquire");
        LastRequest = request;
        return new(new Lease { Subnet = LeaseSubnet, Attributes = request.Attributes, Expiration = DateTimeOffset.UnixEpoch.AddDays(1), Revision = 1 });
    }

    public ValueTask<Lease> RenewLeaseAsync(Lease lease, CancellationToken cancellationToken) => new(lease);

    public async IAsyncEnumerable<Lease> KeepLeaseAsync(Lease lease, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        log.Add("keep");
        await foreach (Lease updated in KeepChannel.Reader.ReadAllAsync(cancellationToken))
        {
            yield return updated;
        }
    }

    public ValueTask RevokeLeaseAsync(Lease lease, CancellationToken cancellationToken)
    {
        Revoked = true;
        return ValueTask.CompletedTask;
    }

    public async IAsyncEnumerable<LeaseWatchResult> WatchLeasesAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref WatchStarts);
        log.Add("watch");
        ChannelReader<object> reader = Volatile.Read(ref _watch).Reader;
        await foreach (object item in reader.ReadAllAsync(cancellationToken))
        {
            if (item is Exception ex)
            {
                Volatile.Write(ref _watch, Channel.CreateUnbounded<object>());
                throw ex;
            }

            yield return (LeaseWatchResult)item;
        }
    }

    public void Publish(LeaseWatchResult item) => Volatile.Read(ref _watch).Writer.TryWrite(item);

    /// <summary>Makes the current watch fail; the next watch reads a fresh channel.</summary>
    public void FailWatch(Exception error) => Volatile.Read(ref _watch).Writer.TryWrite(error);
}

/// <summary>A backend that records registration, the configured lease, and every batch it is asked to program.</summary>
internal sealed class RecordingBackend(CallLog log, string type = "fake") : IBackend
{
    public string BackendType => type;

    public BackendContext? Context { get; private set; }

    public RecordingNetwork Network { get; } = new(log);

    public ValueTask<INetwork> RegisterNetworkAsync(BackendContext context, CancellationToken cancellationToken)
    {
        log.Add("register");
        Context = context;
        Network.PublicIP = context.ExternalInterface.PublicIP!;
        return new(Network);
    }
}

internal sealed class RecordingNetwork(CallLog log) : INetwork, IOverlayNetwork, IPeerKernelStateSource
{
    /// <summary>Kernel state per lease key, as a reconciling backend reports it; unknown otherwise.</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, PeerKernelStatus> KernelStates { get; } = new(StringComparer.Ordinal);

    public IReadOnlyList<string> DeviceNames => ["fake.1"];

    public PeerKernelStatus GetPeerKernelStatus(string leaseKey) => KernelStates.GetValueOrDefault(leaseKey, PeerKernelStatus.Unknown);

    private readonly Lock _gate = new();
    private readonly List<IReadOnlyList<LeaseEvent>> _batches = [];

    public IPAddress PublicIP { get; set; } = IPAddress.Any;

    public LeaseAttributes LeaseAttributes => new() { PublicIP = PublicIP, BackendType = "fake", BackendData = "{\"Id\":1}" };

    public int Mtu => 1450;

    public List<Lease> ConfiguredLeases { get; } = [];

    public IReadOnlyList<IReadOnlyList<LeaseEvent>> Batches
    {
        get
        {
            lock (_gate)
            {
                return [.. _batches];
            }
        }
    }

    public bool RunEnded { get; private set; }

    /// <summary>When set, each batch counts as programmed (the next is asked for) only once this completes.</summary>
    public Task? ProgramGate { get; set; }

    public ValueTask ConfigureLeaseAsync(Lease ownLease, CancellationToken cancellationToken)
    {
        log.Add("configure-lease");
        lock (_gate)
        {
            ConfiguredLeases.Add(ownLease);
        }

        return ValueTask.CompletedTask;
    }

    public async Task RunAsync(IAsyncEnumerable<IReadOnlyList<LeaseEvent>> leaseEvents, CancellationToken cancellationToken)
    {
        log.Add("run");
        try
        {
            await foreach (IReadOnlyList<LeaseEvent> batch in leaseEvents.WithCancellation(cancellationToken))
            {
                lock (_gate)
                {
                    _batches.Add(batch);
                }

                // Still programming this batch: the next is asked for only when the gate opens.
                if (ProgramGate is { } gate)
                {
                    await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            RunEnded = true;
        }
    }
}

internal sealed class RecordingTrafficRules(CallLog log) : IAgentTrafficRules
{
    public ConcurrentQueue<TrafficRulesRequest> Requests { get; } = new();

    /// <summary>When set, a start-up installation (not a resync) waits for it: its exception, if any, is the failure.</summary>
    public Task? StartupGate { get; set; }

    public async ValueTask EnsureAsync(TrafficRulesRequest request, CancellationToken cancellationToken)
    {
        log.Add(request.IsResync ? "traffic-resync" : "traffic");
        Requests.Enqueue(request);
        if (!request.IsResync && StartupGate is { } gate)
        {
            await gate.WaitAsync(cancellationToken);
        }
    }
}
