using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using dotnet_etcd;
using Etcdserverpb;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Grpc.Net.Client.Balancer;
using Grpc.Net.Client.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Flannel.Store.Etcd;

/// <summary>
/// One gRPC channel to an etcd cluster, built here rather than by dotnet-etcd so that TLS, failover and
/// authentication are explicit:
/// <list type="bullet">
/// <item>every endpoint of the list is a subchannel of a static resolver with round-robin picking, so calls
/// go to the members that are up;</item>
/// <item>TLS is on when an endpoint says <c>https://</c> or a CA/cert/key is configured (dotnet-etcd does not
/// enable TLS from the URL scheme). The client certificate and key come from PEM files; with a CA file the
/// server must chain to that CA and match the endpoint name;</item>
/// <item>with a user name, an auth token from <c>Authenticate</c> is stamped on every call by an interceptor
/// and renewed when etcd reports it invalid;</item>
/// <item>HTTP/2 keep-alive pings detect a dead connection under a long-lived watch.</item>
/// </list>
/// The channel is wrapped in dotnet-etcd's <see cref="EtcdClient"/> for unary calls; watches and
/// keep-alives use the raw generated streaming clients, whose errors and revisions are fully visible.
/// </summary>
internal sealed class EtcdConnection : IDisposable
{
    private static readonly Metadata RequireLeader = new() { { "hasleader", "true" } };
    private readonly GrpcChannel _channel;
    private readonly TokenInterceptor? _tokens;
    private readonly Auth.AuthClient? _authClient;
    private readonly string? _username;
    private readonly string? _password;
    private readonly SemaphoreSlim _authGate = new(1, 1);
    private int _closedAfterHandshake;

    public EtcdConnection(EtcdSubnetStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        IReadOnlyList<EtcdEndpoint> endpoints = EtcdEndpoint.ParseList(options.Endpoints, out string? error);
        if (error is not null)
        {
            throw new ArgumentException($"Endpoints '{options.Endpoints}': {error}.", nameof(options));
        }

        Endpoints = endpoints;
        RequestTimeout = options.RequestTimeout;
        IsTls = endpoints.Any(e => e.Https == true) || !string.IsNullOrEmpty(options.CaFile) || !string.IsNullOrEmpty(options.CertFile);
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            KeepAlivePingDelay = TimeSpan.FromSeconds(10),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        };
        if (IsTls)
        {
            ConfigureTls(handler.SslOptions, options);
            HasClientCertificate = handler.SslOptions.ClientCertificates is { Count: > 0 };
        }

        var resolver = new StaticResolverFactory(_ => endpoints.Select(e => new BalancerAddress(e.Host, e.Port)).ToArray());
        var services = new ServiceCollection();
        services.AddSingleton<ResolverFactory>(resolver);
        _channel = GrpcChannel.ForAddress("static://etcd", new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            Credentials = IsTls ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure,
            ServiceProvider = services.BuildServiceProvider(),
            MaxReceiveMessageSize = 64 * 1024 * 1024,
            ThrowOperationCanceledOnCancellation = true,
            ServiceConfig = new ServiceConfig
            {
                LoadBalancingConfigs = { new RoundRobinConfig() },
                MethodConfigs =
                {
                    // A call that never reached a member (connection refused, member down) is tried again on
                    // another one; everything else is for the store's own retry loops to decide.
                    new MethodConfig
                    {
                        Names = { MethodName.Default },
                        RetryPolicy = new RetryPolicy
                        {
                            MaxAttempts = 3,
                            InitialBackoff = TimeSpan.FromMilliseconds(50),
                            MaxBackoff = TimeSpan.FromMilliseconds(500),
                            BackoffMultiplier = 2,
                            RetryableStatusCodes = { StatusCode.Unavailable },
                        },
                    },
                },
            },
        });

        CallInvoker invoker = _channel.CreateCallInvoker();
        if (!string.IsNullOrEmpty(options.Username))
        {
            _username = options.Username;
            _password = options.Password ?? string.Empty;
            _authClient = new Auth.AuthClient(invoker);
            _tokens = new TokenInterceptor();
            invoker = invoker.Intercept(_tokens);
        }

        Client = new EtcdClient(invoker);
        KV = new KV.KVClient(invoker);
        Watch = new Watch.WatchClient(invoker);
        Lease = new Lease.LeaseClient(invoker);
    }

    /// <summary>The parsed endpoints.</summary>
    public IReadOnlyList<EtcdEndpoint> Endpoints { get; }

    /// <summary>True when the channel uses TLS.</summary>
    public bool IsTls { get; }

    /// <summary>True when a client certificate is presented.</summary>
    public bool HasClientCertificate { get; }

    /// <summary>The deadline of each unary call.</summary>
    public TimeSpan RequestTimeout { get; }

    /// <summary>dotnet-etcd's client over this channel.</summary>
    public EtcdClient Client { get; }

    /// <summary>The raw KV client (transactions).</summary>
    public KV.KVClient KV { get; }

    /// <summary>The raw watch client (bidirectional stream).</summary>
    public Watch.WatchClient Watch { get; }

    /// <summary>The raw lease client (keep-alive stream).</summary>
    public Lease.LeaseClient Lease { get; }

    /// <summary>Metadata asking etcd to fail a stream when its member has no leader (clientv3's WithRequireLeader).</summary>
    public static Metadata RequireLeaderHeaders => RequireLeader;

    /// <summary>The deadline for a unary call started now.</summary>
    public DateTime Deadline() => DateTime.UtcNow + RequestTimeout;

    /// <summary>
    /// Runs one unary call with a deadline, after making sure an auth token exists; when etcd says the token is
    /// no longer valid (simple tokens expire after 5 idle minutes by default), authenticates again and retries once.
    /// </summary>
    public async Task<T> CallAsync<T>(Func<EtcdClient, DateTime, CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(call);
        try
        {
            await EnsureAuthenticatedAsync(cancellationToken).ConfigureAwait(false);
            T result;
            try
            {
                result = await call(Client, Deadline(), cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException ex) when (_tokens is not null && IsInvalidToken(ex))
            {
                _tokens.Token = null;
                await EnsureAuthenticatedAsync(cancellationToken).ConfigureAwait(false);
                result = await call(Client, Deadline(), cancellationToken).ConfigureAwait(false);
            }

            Volatile.Write(ref _closedAfterHandshake, 0);
            return result;
        }
        catch (RpcException ex) when (IsTls && EtcdErrors.IsClosedAfterTlsHandshake(ex))
        {
            // Once could be a member going down mid-handshake; three times in a row is a rejected client certificate.
            if (Interlocked.Increment(ref _closedAfterHandshake) < 3)
            {
                throw;
            }

            throw new EtcdConnectionException(
                $"etcd at {string.Join(',', Endpoints)} closed every TLS connection right after the handshake: it requires a client " +
                $"certificate it trusts (--client-cert-auth). {(HasClientCertificate ? "Check that CertFile and KeyFile are signed by etcd's --trusted-ca-file" : "Set CertFile and KeyFile")}.",
                ex);
        }
    }

    /// <summary>Obtains an auth token when authentication is configured and none is cached.</summary>
    public async Task EnsureAuthenticatedAsync(CancellationToken cancellationToken)
    {
        if (_tokens is null || _tokens.Token is not null)
        {
            return;
        }

        await _authGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_tokens.Token is not null)
            {
                return;
            }

            AuthenticateResponse response = await _authClient!.AuthenticateAsync(
                new AuthenticateRequest { Name = _username, Password = _password },
                deadline: Deadline(),
                cancellationToken: cancellationToken).ConfigureAwait(false);
            _tokens.Token = response.Token;
        }
        finally
        {
            _authGate.Release();
        }
    }

    /// <summary>Forgets the auth token after a stream failed with an invalid token.</summary>
    public void InvalidateToken(RpcException exception)
    {
        if (_tokens is not null && IsInvalidToken(exception))
        {
            _tokens.Token = null;
        }
    }

    public void Dispose()
    {
        _channel.Dispose();
        _authGate.Dispose();
    }

    private static bool IsInvalidToken(RpcException ex) =>
        ex.StatusCode == StatusCode.Unauthenticated
        && ex.Status.Detail.Contains("invalid auth token", StringComparison.OrdinalIgnoreCase);

    private static void ConfigureTls(SslClientAuthenticationOptions ssl, EtcdSubnetStoreOptions options)
    {
        ssl.EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13;
        if (!string.IsNullOrEmpty(options.CertFile) && !string.IsNullOrEmpty(options.KeyFile))
        {
            ssl.ClientCertificates = [LoadClientCertificate(options.CertFile, options.KeyFile)];
        }

        if (string.IsNullOrEmpty(options.CaFile))
        {
            return; // The system trust store and the default name check apply.
        }

        var trusted = new X509Certificate2Collection();
        try
        {
            trusted.ImportFromPemFile(options.CaFile);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            throw new EtcdConnectionException($"CaFile '{options.CaFile}' could not be read as PEM certificates: {ex.Message}", ex);
        }

        if (trusted.Count == 0)
        {
            throw new EtcdConnectionException($"CaFile '{options.CaFile}' contains no PEM certificate.");
        }

        ssl.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
        {
            // The name must still match the endpoint; only the trust anchor is replaced by the CA file.
            if (certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
            {
                return false;
            }

            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(trusted);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            using var leaf = new X509Certificate2(certificate);
            return chain.Build(leaf);
        };
    }

    private static X509Certificate2 LoadClientCertificate(string certFile, string keyFile)
    {
        try
        {
            using X509Certificate2 pem = X509Certificate2.CreateFromPemFile(certFile, keyFile);

            // SslStream wants a certificate whose key is not ephemeral on some platforms; a PKCS#12 round
            // trip gives it a persisted-in-memory key everywhere.
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            throw new EtcdConnectionException(
                $"The client certificate could not be loaded from CertFile '{certFile}' and KeyFile '{keyFile}': {ex.Message}", ex);
        }
    }

    /// <summary>Adds etcd's <c>token</c> header to every call except <c>Authenticate</c> itself.</summary>
    private sealed class TokenInterceptor : Interceptor
    {
        private volatile string? _token;

        public string? Token
        {
            get => _token;
            set => _token = value;
        }

        public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(
            TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncUnaryCallContinuation<TRequest, TResponse> continuation) =>
            continuation(request, WithToken(context));

        public override TResponse BlockingUnaryCall<TRequest, TResponse>(
            TRequest request, ClientInterceptorContext<TRequest, TResponse> context, BlockingUnaryCallContinuation<TRequest, TResponse> continuation) =>
            continuation(request, WithToken(context));

        public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(
            TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncServerStreamingCallContinuation<TRequest, TResponse> continuation) =>
            continuation(request, WithToken(context));

        public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(
            ClientInterceptorContext<TRequest, TResponse> context, AsyncDuplexStreamingCallContinuation<TRequest, TResponse> continuation) =>
            continuation(WithToken(context));

        private ClientInterceptorContext<TRequest, TResponse> WithToken<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context)
            where TRequest : class
            where TResponse : class
        {
            string? token = _token;
            if (token is null || context.Method.Name == "Authenticate")
            {
                return context;
            }

            var headers = new Metadata();
            if (context.Options.Headers is { } existing)
            {
                foreach (Metadata.Entry entry in existing)
                {
                    headers.Add(entry);
                }
            }

            headers.Add("token", token);
            return new ClientInterceptorContext<TRequest, TResponse>(context.Method, context.Host, context.Options.WithHeaders(headers));
        }
    }
}
