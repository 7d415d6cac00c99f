using System.Globalization;
using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Etcdserverpb;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Grpc.Net.Client.Balancer;
using Grpc.Net.Client.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Flannel.Store.Etcd;

/// <summary>
/// The store's connection to an etcd cluster (<see cref="IEtcdKeyValue"/> over gRPC), built here rather than by
/// dotnet-etcd so that TLS, failover, authentication and dead-stream detection are explicit:
/// <list type="bullet">
/// <item>unary calls go through one channel whose subchannels are every endpoint of the list, picked round-robin
/// among the members that are up; a call that never reached a member is retried on another;</item>
/// <item>a watch is pinned to one member, through a channel of its own to that endpoint. It asks for a leader (a
/// member that lost its leader ends the stream), and while it is quiet it sends etcd a progress request every
/// <see cref="EtcdSubnetStoreOptions.WatchProgressInterval"/>: when nothing at all comes back within
/// <see cref="EtcdSubnetStoreOptions.WatchTimeout"/> (a silently partitioned member answers nothing, and its
/// TCP connection looks healthy), the watch fails and the next one goes to the next endpoint of the list;</item>
/// <item>TLS is on when an endpoint says <c>https://</c> or a CA/cert/key is configured (dotnet-etcd does not
/// enable TLS from the URL scheme). The client certificate and key come from PEM files; with a CA file the
/// server must chain to that CA and match the endpoint name;</item>
/// <item>with a user name, an auth token from <c>Authenticate</c> is stamped on every call by an interceptor
/// and renewed when etcd reports it invalid;</item>
/// <item>HTTP/2 keep-alive pings, while calls are active, close a dead connection so its member stops being
/// picked. etcd refuses pings more often than every 5 s (<c>--grpc-keepalive-min-time</c>) and on idle connections,
/// so the pings are every 5 s and only with active calls; the watch's progress requests do the fast detection.</item>
/// </list>
/// </summary>
internal sealed class EtcdConnection : IEtcdKeyValue
{
    private static readonly Metadata RequireLeader = new() { { "hasleader", "true" } };

    // How often the watchdog looks at a watch; small against the timeouts.
    private static readonly TimeSpan WatchdogTick = TimeSpan.FromMilliseconds(250);
    private readonly EtcdSubnetStoreOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TokenInterceptor? _tokens;
    private readonly SslClientAuthenticationOptions? _tls;

    // The channel to the members (and its HTTP handler, resolver and clients) is made by the first call, not when the
    // store is built: a host that never talks to etcd, or not yet, pays nothing for it.
    private readonly Lazy<UnaryClients> _clients;
    private readonly string? _username;
    private readonly string? _password;
    private readonly SemaphoreSlim _authGate = new(1, 1);
    private readonly Lock _watchChannelsLock = new();
    private readonly (GrpcChannel Channel, Watch.WatchClient Client)?[] _watchChannels;
    private int _watchEndpoint;
    private int _closedAfterHandshake;

    public EtcdConnection(EtcdSubnetStoreOptions options, TimeProvider? timeProvider = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        IReadOnlyList<EtcdEndpoint> endpoints = EtcdEndpoint.ParseList(options.Endpoints, out string? error);
        if (error is not null)
        {
            throw new ArgumentException($"Endpoints '{options.Endpoints}': {error}.", nameof(options));
        }

        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        Endpoints = endpoints;
        RequestTimeout = options.RequestTimeout;
        IsTls = endpoints.Any(e => e.Https == true) || !string.IsNullOrEmpty(options.CaFile) || !string.IsNullOrEmpty(options.CertFile);

        // TLS material is read now, so a bad CertFile, KeyFile or CaFile fails the start with its name.
        if (IsTls)
        {
            _tls = new SslClientAuthenticationOptions();
            ConfigureTls(_tls, options);
        }

        HasClientCertificate = _tls?.ClientCertificates is { Count: > 0 };
        if (!string.IsNullOrEmpty(options.Username))
        {
            _username = options.Username;
            _password = options.Password ?? string.Empty;
            _tokens = new TokenInterceptor();
        }

        _clients = new Lazy<UnaryClients>(CreateUnaryClients, LazyThreadSafetyMode.ExecutionAndPublication);
        _watchChannels = new (GrpcChannel, Watch.WatchClient)?[endpoints.Count];

        // Watches of different processes start on different members; all of this process's watches move together.
        _watchEndpoint = endpoints.Count == 1 ? 0 : Random.Shared.Next(endpoints.Count);
    }

    /// <summary>The parsed endpoints.</summary>
    public IReadOnlyList<EtcdEndpoint> Endpoints { get; }

    /// <inheritdoc/>
    public string EndpointsText => string.Join(',', Endpoints);

    /// <inheritdoc/>
    public bool IsTls { get; }

    /// <summary>True when a client certificate is presented.</summary>
    public bool HasClientCertificate { get; }

    /// <summary>The deadline of each unary call.</summary>
    public TimeSpan RequestTimeout { get; }

    /// <summary>The deadline for a unary call started now.</summary>
    public DateTime Deadline() => DateTime.UtcNow + RequestTimeout;

    /// <inheritdoc/>
    public Task<RangeResponse> RangeAsync(RangeRequest request, CancellationToken cancellationToken) =>
        CallAsync((d, t) => _clients.Value.KV.RangeAsync(request, null, d, t).ResponseAsync, cancellationToken);

    /// <inheritdoc/>
    public Task<TxnResponse> TxnAsync(TxnRequest request, CancellationToken cancellationToken) =>
        CallAsync((d, t) => _clients.Value.KV.TxnAsync(request, null, d, t).ResponseAsync, cancellationToken);

    /// <inheritdoc/>
    public Task<LeaseGrantResponse> LeaseGrantAsync(LeaseGrantRequest request, CancellationToken cancellationToken) =>
        CallAsync((d, t) => _clients.Value.Lease.LeaseGrantAsync(request, null, d, t).ResponseAsync, cancellationToken);

    /// <inheritdoc/>
    public Task<LeaseRevokeResponse> LeaseRevokeAsync(LeaseRevokeRequest request, CancellationToken cancellationToken) =>
        CallAsync((d, t) => _clients.Value.Lease.LeaseRevokeAsync(request, null, d, t).ResponseAsync, cancellationToken);

    /// <inheritdoc/>
    public Task<LeaseTimeToLiveResponse> LeaseTimeToLiveAsync(LeaseTimeToLiveRequest request, CancellationToken cancellationToken) =>
        CallAsync((d, t) => _clients.Value.Lease.LeaseTimeToLiveAsync(request, null, d, t).ResponseAsync, cancellationToken);

    /// <inheritdoc/>
    public Task<LeaseKeepAliveResponse> LeaseKeepAliveOnceAsync(long leaseId, CancellationToken cancellationToken) =>
        CallAsync(
            async (d, t) =>
            {
                using AsyncDuplexStreamingCall<LeaseKeepAliveRequest, LeaseKeepAliveResponse> call = _clients.Value.Lease.LeaseKeepAlive(deadline: d, cancellationToken: t);
                await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = leaseId }, t).ConfigureAwait(false);
                if (!await call.ResponseStream.MoveNext(t).ConfigureAwait(false))
                {
                    throw new IOException("etcd closed the keep-alive stream without answering.");
                }

                await call.RequestStream.CompleteAsync().ConfigureAwait(false);
                return call.ResponseStream.Current;
            },
            cancellationToken);

    /// <inheritdoc/>
    public async IAsyncEnumerable<WatchResponse> WatchAsync(WatchCreateRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        await EnsureAuthenticatedAsync(cancellationToken).ConfigureAwait(false);
        int index = Volatile.Read(ref _watchEndpoint);
        EtcdEndpoint endpoint = Endpoints[index];
        using var callCancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var liveness = new WatchLiveness(_time);
        using AsyncDuplexStreamingCall<WatchRequest, WatchResponse> call = WatchClient(index).Watch(RequireLeader, cancellationToken: callCancellation.Token);
        using var stopWatchdog = new CancellationTokenSource();
        Task watchdog = RunWatchdogAsync(call, liveness, callCancellation, stopWatchdog.Token);
        bool failed = true;
        try
        {
            string watchedKey = request.Key.ToStringUtf8();
            string endpointText = endpoint.ToString();
            Log.WatchOpened(_logger, watchedKey, endpointText, request.StartRevision);
            try
            {
                await call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = request }, callCancellation.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested && Explain(ex, liveness, endpoint) is { } explained)
            {
                throw explained;
            }

            while (true)
            {
                if (!await MoveNextAsync(call.ResponseStream, liveness, endpoint, callCancellation.Token, cancellationToken).ConfigureAwait(false))
                {
                    throw new IOException($"etcd at {endpoint} closed the watch stream.");
                }

                WatchResponse response = call.ResponseStream.Current;
                failed = response.Canceled && response.CompactRevision == 0;
                yield return response;
                failed = true;
            }
        }
        finally
        {
            await stopWatchdog.CancelAsync().ConfigureAwait(false);
            await watchdog.ConfigureAwait(false);
            if (failed && !cancellationToken.IsCancellationRequested && Endpoints.Count > 1)
            {
                // This member broke the watch or stopped answering: the next watch tries the next member.
                Interlocked.CompareExchange(ref _watchEndpoint, (index + 1) % Endpoints.Count, index);
            }
        }
    }

    private async Task<bool> MoveNextAsync(
        IAsyncStreamReader<WatchResponse> responses, WatchLiveness liveness, EtcdEndpoint endpoint, CancellationToken callToken, CancellationToken cancellationToken)
    {
        try
        {
            bool more = await responses.MoveNext(callToken).ConfigureAwait(false);
            liveness.Answered();
            return more;
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested && Explain(ex, liveness, endpoint) is { } explained)
        {
            throw explained;
        }
    }

    /// <summary>
    /// The failure of a watch step as the caller should see it, or null to let it through as it is: when the watchdog
    /// cut the call because the member went silent, a <see cref="TimeoutException"/> saying so instead of the
    /// cancellation it caused. Forgets an auth token etcd called invalid.
    /// </summary>
    private Exception? Explain(Exception ex, WatchLiveness liveness, EtcdEndpoint endpoint)
    {
        if (liveness.TimedOut)
        {
            return new TimeoutException(
                $"etcd at {endpoint} did not answer the watch for {liveness.Limit.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture)} s" +
                (liveness.Created ? "" : " (no reply to the watch request)"),
                ex);
        }

        if (ex is RpcException rpc)
        {
            InvalidateToken(rpc);
        }

        // The call's own token was cancelled without the caller asking: the call is over, for the caller that is I/O.
        return ex is OperationCanceledException ? new IOException($"the watch on etcd at {endpoint} was cut: {ex.Message}", ex) : null;
    }

    /// <summary>
    /// Keeps a quiet watch talking: after <see cref="EtcdSubnetStoreOptions.WatchProgressInterval"/> without a
    /// response it asks etcd for a progress notification (etcd 3.4+ answers at once), and when nothing has come for
    /// <see cref="EtcdSubnetStoreOptions.WatchTimeout"/> — or, before the watch is created, for the shorter of that and
    /// 3 s — it cancels the call.
    /// </summary>
    private async Task RunWatchdogAsync(
        AsyncDuplexStreamingCall<WatchRequest, WatchResponse> call, WatchLiveness liveness, CancellationTokenSource callCancellation, CancellationToken stop)
    {
        TimeSpan createLimit = _options.WatchTimeout < TimeSpan.FromSeconds(3) ? _options.WatchTimeout : TimeSpan.FromSeconds(3);
        DateTimeOffset lastRequest = _time.GetUtcNow();
        try
        {
            while (true)
            {
                await Task.Delay(WatchdogTick, _time, stop).ConfigureAwait(false);
                DateTimeOffset now = _time.GetUtcNow();
                TimeSpan silent = now - liveness.LastAnswer;
                TimeSpan limit = liveness.Created ? _options.WatchTimeout : createLimit;
                if (silent >= limit)
                {
                    liveness.Expire(limit);
                    await callCancellation.CancelAsync().ConfigureAwait(false);
                    return;
                }

                if (liveness.Created && silent >= _options.WatchProgressInterval && now - lastRequest >= _options.WatchProgressInterval)
                {
                    lastRequest = now;
                    await call.RequestStream.WriteAsync(new WatchRequest { ProgressRequest = new WatchProgressRequest() }, stop).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or RpcException or IOException or InvalidOperationException)
        {
            // Stopped, or the call is already over: the reader sees why.
        }
    }

    /// <summary>When the watch last heard from etcd, whether it is created, and whether the watchdog gave up on it.</summary>
    private sealed class WatchLiveness(TimeProvider time)
    {
        private long _lastAnswerTicks = time.GetUtcNow().UtcTicks;
        private volatile bool _created;
        private volatile bool _timedOut;

        public DateTimeOffset LastAnswer => new(Interlocked.Read(ref _lastAnswerTicks), TimeSpan.Zero);

        public bool Created => _created;

        public bool TimedOut => _timedOut;

        public TimeSpan Limit { get; private set; }

        public void Answered()
        {
            Interlocked.Exchange(ref _lastAnswerTicks, time.GetUtcNow().UtcTicks);
            _created = true;
        }

        public void Expire(TimeSpan limit)
        {
            Limit = limit;
            _timedOut = true;
        }
    }

    /// <summary>True once the first call has made the channel (tests).</summary>
    internal bool ChannelCreated => _clients.IsValueCreated;

    /// <summary>The channel that unary calls share (round robin over the members, retried on another when one is down) and its clients.</summary>
    private sealed record UnaryClients(GrpcChannel Channel, KV.KVClient KV, Lease.LeaseClient Lease, Auth.AuthClient? Auth);

    private UnaryClients CreateUnaryClients()
    {
        IReadOnlyList<EtcdEndpoint> endpoints = Endpoints;
        var resolver = new StaticResolverFactory(_ => endpoints.Select(e => new BalancerAddress(e.Host, e.Port)).ToArray());
        var services = new ServiceCollection();
        services.AddSingleton<ResolverFactory>(resolver);
        GrpcChannel channel = GrpcChannel.ForAddress("static://etcd", new GrpcChannelOptions
        {
            HttpHandler = CreateHandler(),
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

        CallInvoker invoker = Intercepted(channel);
        return new UnaryClients(
            channel,
            new KV.KVClient(invoker),
            new Lease.LeaseClient(invoker),
            _tokens is null ? null : new Auth.AuthClient(channel.CreateCallInvoker()));
    }

    private Watch.WatchClient WatchClient(int index)
    {
        lock (_watchChannelsLock)
        {
            if (_watchChannels[index] is { } existing)
            {
                return existing.Client;
            }

            EtcdEndpoint endpoint = Endpoints[index];
            string host = endpoint.Host.Contains(':', StringComparison.Ordinal) ? $"[{endpoint.Host}]" : endpoint.Host;
            GrpcChannel channel = GrpcChannel.ForAddress(
                string.Create(CultureInfo.InvariantCulture, $"{(IsTls ? "https" : "http")}://{host}:{endpoint.Port}"),
                new GrpcChannelOptions
                {
                    HttpHandler = CreateHandler(),
                    DisposeHttpClient = true,
                    Credentials = IsTls ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure,
                    MaxReceiveMessageSize = 64 * 1024 * 1024,
                    ThrowOperationCanceledOnCancellation = true,
                });
            var client = new Watch.WatchClient(Intercepted(channel));
            _watchChannels[index] = (channel, client);
            return client;
        }
    }

    private CallInvoker Intercepted(GrpcChannel channel) =>
        _tokens is null ? channel.CreateCallInvoker() : channel.CreateCallInvoker().Intercept(_tokens);

    private SocketsHttpHandler CreateHandler()
    {
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            KeepAlivePingDelay = TimeSpan.FromSeconds(5),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        };
        if (_tls is not null)
        {
            handler.SslOptions = new SslClientAuthenticationOptions
            {
                EnabledSslProtocols = _tls.EnabledSslProtocols,
                ClientCertificates = _tls.ClientCertificates,
                RemoteCertificateValidationCallback = _tls.RemoteCertificateValidationCallback,
            };
        }

        return handler;
    }

    /// <summary>
    /// Runs one unary call with a deadline, after making sure an auth token exists; when etcd says the token is
    /// no longer valid (simple tokens expire after 5 idle minutes by default), authenticates again and retries once.
    /// </summary>
    private async Task<T> CallAsync<T>(Func<DateTime, CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            await EnsureAuthenticatedAsync(cancellationToken).ConfigureAwait(false);
            T result;
            try
            {
                result = await call(Deadline(), cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException ex) when (_tokens is not null && IsInvalidToken(ex))
            {
                _tokens.Token = null;
                await EnsureAuthenticatedAsync(cancellationToken).ConfigureAwait(false);
                result = await call(Deadline(), cancellationToken).ConfigureAwait(false);
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
    private async Task EnsureAuthenticatedAsync(CancellationToken cancellationToken)
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

            AuthenticateResponse response = await _clients.Value.Auth!.AuthenticateAsync(
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
    private void InvalidateToken(RpcException exception)
    {
        if (_tokens is not null && IsInvalidToken(exception))
        {
            _tokens.Token = null;
        }
    }

    public void Dispose()
    {
        if (_clients.IsValueCreated)
        {
            _clients.Value.Channel.Dispose();
        }

        lock (_watchChannelsLock)
        {
            foreach ((GrpcChannel channel, _) in _watchChannels.OfType<(GrpcChannel, Watch.WatchClient)>())
            {
                channel.Dispose();
            }
        }

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
