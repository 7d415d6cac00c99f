namespace Flannel.Store.Kube;

/// <summary>
/// Options of the Kubernetes subnet store, one per flanneld kube-mode flag (<c>--kube-api-url</c>,
/// <c>--kubeconfig-file</c>, <c>--kube-annotation-prefix</c>, <c>--net-config-path</c>,
/// <c>--set-node-network-unavailable</c>). Validated when the host starts.
/// </summary>
public sealed class KubeSubnetStoreOptions
{
    /// <summary>flannel's default <c>--net-config-path</c>: the mounted <c>kube-flannel-cfg</c> ConfigMap.</summary>
    public const string DefaultNetConfigPath = "/etc/kube-flannel/net-conf.json";

    /// <summary>
    /// <c>--kube-api-url</c>: the API server URL, e.g. <c>https://10.0.0.1:6443</c>. With
    /// <see cref="KubeconfigFile"/> it overrides the kubeconfig's server; alone it is used as is (no credentials).
    /// When both are empty the in-cluster configuration (service account) is used.
    /// </summary>
    public string? ApiUrl { get; set; }

    /// <summary><c>--kubeconfig-file</c>: path of a kubeconfig file.</summary>
    public string? KubeconfigFile { get; set; }

    /// <summary><c>--kube-annotation-prefix</c>; default <c>flannel.alpha.coreos.com</c>. See <see cref="AnnotationNames"/>.</summary>
    public string AnnotationPrefix { get; set; } = AnnotationNames.DefaultPrefix;

    /// <summary><c>--net-config-path</c>; default <c>/etc/kube-flannel/net-conf.json</c>.</summary>
    public string NetConfigPath { get; set; } = DefaultNetConfigPath;

    /// <summary>
    /// This node's name. When null, flannel's lookup applies: <c>NODE_NAME</c>, else the pod named by
    /// <c>POD_NAME</c> and <c>POD_NAMESPACE</c> and its <c>spec.nodeName</c>.
    /// </summary>
    public string? NodeName { get; set; }

    /// <summary><c>--set-node-network-unavailable</c>: set the node's NetworkUnavailable condition to False once the backend runs (default true).</summary>
    public bool SetNodeNetworkUnavailable { get; set; } = true;

    /// <summary>Pause between attempts to patch the node (flannel: 3 s).</summary>
    public TimeSpan PatchRetryInterval { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>How long to keep retrying a node patch before giving up (flannel: 30 s).</summary>
    public TimeSpan PatchRetryTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>First pause before reconnecting a dropped watch; doubled on each failure up to <see cref="WatchMaxBackoff"/>.</summary>
    public TimeSpan WatchMinBackoff { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest pause between watch reconnection attempts.</summary>
    public TimeSpan WatchMaxBackoff { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Server-side timeout asked for each watch request (<c>timeoutSeconds</c>); the watch is then resumed
    /// from the last resourceVersion, as client-go's reflector does (it asks for 5–10 minutes).
    /// </summary>
    public TimeSpan WatchTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Nodes per page (<c>limit</c>) when the API server paginates a list (client-go's pager: 500). A list at
    /// <c>resourceVersion=0</c> is answered from the watch cache in one piece whatever the limit.
    /// </summary>
    public int ListPageSize { get; set; } = 500;
}
