using System.Globalization;
using Flannel.Testing.Etcd;

namespace Flannel.Store.Etcd.Tests.Conformance;

/// <summary>The conformance suite against a real etcd 3.4 through the store's gRPC connection.</summary>
public sealed class RealEtcdConformanceTests(EtcdFixture fixture) : EtcdKeyValueConformance, IClassFixture<EtcdFixture>
{
    private EtcdServer? _server;

    private protected override async Task<IEtcdKeyValue> ConnectAsync()
    {
        _server = await fixture.GetAsync();
        return new EtcdConnection(EtcdTest.Options(_server, "/unused"));
    }

    protected override async Task CompactAsync(long revision) =>
        (await _server!.EtcdctlAsync("compact", revision.ToString(CultureInfo.InvariantCulture))).EnsureSuccess();

    protected override Task ElapseAsync(TimeSpan duration) => Task.Delay(duration, TestContext.Current.CancellationToken);
}
