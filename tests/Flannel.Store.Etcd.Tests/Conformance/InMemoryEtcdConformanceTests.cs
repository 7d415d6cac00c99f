using Flannel.Store.Etcd.Tests.Fakes;
using Microsoft.Extensions.Time.Testing;

namespace Flannel.Store.Etcd.Tests.Conformance;

/// <summary>The conformance suite against the in-memory fake, on a fake clock.</summary>
public sealed class InMemoryEtcdConformanceTests : EtcdKeyValueConformance
{
    private readonly FakeTimeProvider _time = new();
    private InMemoryEtcd? _fake;

    private protected override Task<IEtcdKeyValue> ConnectAsync() => Task.FromResult<IEtcdKeyValue>(_fake = new InMemoryEtcd(_time));

    protected override Task CompactAsync(long revision)
    {
        _fake!.Compact(revision);
        return Task.CompletedTask;
    }

    protected override Task ElapseAsync(TimeSpan duration)
    {
        _time.Advance(duration);
        return Task.CompletedTask;
    }
}
