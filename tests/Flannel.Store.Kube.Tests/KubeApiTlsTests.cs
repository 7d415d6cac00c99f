using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Flannel.Store.Kube.Tests.Fixtures;
using Flannel.Subnets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace Flannel.Store.Kube.Tests;

/// <summary>
/// The store's HTTP pipeline against an HTTPS API server, configured by a kubeconfig as a cluster's admin writes one:
/// the cluster's CA (<c>certificate-authority-data</c>), a bearer token and a client certificate. The pipeline is built
/// from KubernetesClient's public pieces (not its <c>Kubernetes</c> class), so these pin what that class did for us.
/// </summary>
public sealed class KubeApiTlsTests
{
    [Fact]
    public async Task The_kubeconfigs_CA_token_and_client_certificate_reach_an_https_API_server()
    {
        using Pki pki = new();
        await using TlsApiServer server = await TlsApiServer.StartAsync(pki.ServerCertificate);
        using TempKubeconfig kubeconfig = new(server.Url, pki.CaPem, pki.ClientCertificatePem, pki.ClientKeyPem);

        (NodeHints hints, string log) = await HintsAsync(kubeconfig.Path);

        Assert.True(hints.PreviousAttributes?.BackendType == "vxlan", log);
        (string authorization, string? clientSubject) = Assert.Single(server.Requests);
        Assert.Equal("Bearer not-a-real-token", authorization);
        Assert.Equal("CN=system:node:node-a", clientSubject);
    }

    [Fact]
    public async Task A_server_certificate_from_another_CA_is_refused_before_the_token_is_sent()
    {
        using Pki pki = new();
        using Pki other = new();
        await using TlsApiServer server = await TlsApiServer.StartAsync(pki.ServerCertificate);
        using TempKubeconfig kubeconfig = new(server.Url, other.CaPem, clientCertificatePem: null, clientKeyPem: null);

        (NodeHints hints, string log) = await HintsAsync(kubeconfig.Path);

        // The store logs why it has no hints (and carries on); the server never saw a request, so never the token.
        Assert.Null(hints.PreviousAttributes);
        Assert.Contains("SSL connection could not be established", log, StringComparison.Ordinal);
        Assert.Empty(server.Requests);
    }

    private static async Task<(NodeHints Hints, string Log)> HintsAsync(string kubeconfig)
    {
        ServiceCollection services = new();
        services.AddFakeLogging();
        services.AddFlannel().AddKubeSubnetStore(o =>
        {
            o.KubeconfigFile = kubeconfig;
            o.NodeName = "node-a";
        });
        await using ServiceProvider provider = services.BuildServiceProvider();
        NodeHints hints = await provider.GetRequiredService<ISubnetStore>().GetNodeHintsAsync(null, KubeStoreHarness.Timeout());
        return (hints, string.Join('\n', provider.GetFakeLogCollector().GetSnapshot().Select(r => r.Message)));
    }

    /// <summary>A cluster CA, a server certificate for 127.0.0.1 and a client certificate, both issued by the CA.</summary>
    private sealed class Pki : IDisposable
    {
        private readonly X509Certificate2 _ca;

        public Pki()
        {
            using ECDsa caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            CertificateRequest caRequest = new("CN=flannel-test-ca", caKey, HashAlgorithmName.SHA256);
            caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
            _ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
            CaPem = _ca.ExportCertificatePem();

            SubjectAlternativeNameBuilder san = new();
            san.AddIpAddress(IPAddress.Loopback);
            ServerCertificate = Issue("CN=kube-apiserver", san.Build(), "1.3.6.1.5.5.7.3.1", out _);
            using X509Certificate2 client = Issue("CN=system:node:node-a", null, "1.3.6.1.5.5.7.3.2", out string clientKeyPem);
            ClientCertificatePem = client.ExportCertificatePem();
            ClientKeyPem = clientKeyPem;
        }

        public string CaPem { get; }

        public X509Certificate2 ServerCertificate { get; }

        public string ClientCertificatePem { get; }

        public string ClientKeyPem { get; }

        public void Dispose()
        {
            ServerCertificate.Dispose();
            _ca.Dispose();
        }

        private X509Certificate2 Issue(string subject, X509Extension? san, string usage, out string keyPem)
        {
            using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            CertificateRequest request = new(subject, key, HashAlgorithmName.SHA256);
            if (san is not null)
            {
                request.CertificateExtensions.Add(san);
            }

            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], false));
            using X509Certificate2 issued = request.Create(_ca, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(12), RandomNumberGenerator.GetBytes(8));
            keyPem = key.ExportPkcs8PrivateKeyPem();

            // Kestrel needs the key in a PKCS#12 form on Linux (an ephemeral key cannot be used by SslStream's server side).
            using X509Certificate2 withKey = issued.CopyWithPrivateKey(key);
            return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
        }
    }

    /// <summary>Kestrel over HTTPS that asks for a client certificate and answers <c>GET /api/v1/nodes/node-a</c>.</summary>
    private sealed class TlsApiServer : IAsyncDisposable
    {
        private WebApplication _app = null!;

        public string Url { get; private set; } = "";

        /// <summary>The Authorization header and the client certificate's subject of each request.</summary>
        public ConcurrentQueue<(string Authorization, string? ClientSubject)> Requests { get; } = new();

        public static async Task<TlsApiServer> StartAsync(X509Certificate2 certificate)
        {
            TlsApiServer server = new();
            WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseKestrelHttpsConfiguration();
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(new HttpsConnectionAdapterOptions
            {
                ServerCertificate = certificate,
                ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                ClientCertificateValidation = static (_, _, _) => true,
            })));
            server._app = builder.Build();
            server._app.Run(context => server.HandleAsync(context));
            await server._app.StartAsync();
            server.Url = server._app.Urls.First();
            return server;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        private Task HandleAsync(HttpContext context)
        {
            Requests.Enqueue((context.Request.Headers.Authorization.ToString(), context.Connection.ClientCertificate?.Subject));
            if (context.Request.Path != "/api/v1/nodes/node-a")
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }

            context.Response.ContentType = "application/json";
            return context.Response.WriteAsync(NodeFixtures.Node("node-a", "198.18.0.11", "10.244.1.0/24", NodeFixtures.FlannelVxlanAnnotations("198.18.0.11", "12:c6:65:89:b4:e3")));
        }
    }

    private sealed class TempKubeconfig : IDisposable
    {
        private readonly string _directory = Directory.CreateTempSubdirectory("flannel-kube-tls-").FullName;

        public TempKubeconfig(string server, string caPem, string? clientCertificatePem, string? clientKeyPem)
        {
            Path = System.IO.Path.Combine(_directory, "kubeconfig");
            string client = clientCertificatePem is null || clientKeyPem is null ? "" : $"""

                    client-certificate-data: {Base64(clientCertificatePem)}
                    client-key-data: {Base64(clientKeyPem)}
                """;
            File.WriteAllText(Path, $"""
                apiVersion: v1
                kind: Config
                clusters:
                - cluster:
                    server: {server}
                    certificate-authority-data: {Base64(caPem)}
                  name: test
                contexts:
                - context:
                    cluster: test
                    user: flannel
                  name: test
                current-context: test
                users:
                - name: flannel
                  user:
                    token: not-a-real-token{client}
                """);
        }

        public string Path { get; }

        public void Dispose() => Directory.Delete(_directory, recursive: true);

        private static string Base64(string pem) => Convert.ToBase64String(Encoding.UTF8.GetBytes(pem));
    }
}
