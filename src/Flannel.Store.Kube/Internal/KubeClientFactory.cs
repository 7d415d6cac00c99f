using k8s;

namespace Flannel.Store.Kube.Internal;

/// <summary>
/// Builds the API client the way flannel's <c>clientcmd.BuildConfigFromFlags(--kube-api-url, --kubeconfig-file)</c>
/// does, and finds this node's name.
/// </summary>
internal static class KubeClientFactory
{
    public static KubeApiClient Create(KubeSubnetStoreOptions options, AnnotationNames names)
    {
        KubernetesClientConfiguration config;
        try
        {
            config = BuildConfiguration(options);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new KubeSubnetStoreException($"fail to create kubernetes config: {e.Message}", e);
        }

        return new KubeApiClient(config, names);
    }

    private static KubernetesClientConfiguration BuildConfiguration(KubeSubnetStoreOptions options)
    {
        string? apiUrl = string.IsNullOrEmpty(options.ApiUrl) ? null : options.ApiUrl;
        if (!string.IsNullOrEmpty(options.KubeconfigFile))
        {
            // The API URL, when also given, overrides the kubeconfig's server (clientcmd's masterUrl).
            return KubernetesClientConfiguration.BuildConfigFromConfigFile(options.KubeconfigFile, currentContext: null, masterUrl: apiUrl);
        }

        if (apiUrl is not null)
        {
            return new KubernetesClientConfiguration { Host = apiUrl };
        }

        // Neither flag: the service account of the pod, as in every kube-flannel.yml deployment. Outside a pod
        // clientcmd falls back to the default loading rules; so do we ($KUBECONFIG, ~/.kube/config).
        return KubernetesClientConfiguration.IsInCluster()
            ? KubernetesClientConfiguration.InClusterConfig()
            : KubernetesClientConfiguration.BuildDefaultConfig();
    }

    /// <summary>
    /// flannel's lookup: <paramref name="configured"/>, else <c>NODE_NAME</c>, else the pod
    /// <c>POD_NAMESPACE/POD_NAME</c> and its <c>spec.nodeName</c>; each failure with flannel's error text.
    /// </summary>
    public static async Task<(string Name, string Source)> ResolveNodeNameAsync(
        KubeApiClient api, string? configured, Func<string, string?> environment, CancellationToken cancellationToken)
    {
        if (!string.IsNullOrEmpty(configured))
        {
            return (configured, "options");
        }

        if (environment("NODE_NAME") is { Length: > 0 } nodeName)
        {
            return (nodeName, "NODE_NAME");
        }

        string? podName = environment("POD_NAME");
        string? podNamespace = environment("POD_NAMESPACE");
        if (string.IsNullOrEmpty(podName) || string.IsNullOrEmpty(podNamespace))
        {
            throw new KubeSubnetStoreException("env variables POD_NAME and POD_NAMESPACE must be set");
        }

        string? fromPod;
        try
        {
            fromPod = await api.GetPodNodeNameAsync(podNamespace, podName, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && NodeListWatcher.IsApiFailure(e))
        {
            throw new KubeSubnetStoreException($"error retrieving pod spec for '{podNamespace}/{podName}': {NodeListWatcher.Describe(e)}", e);
        }

        return fromPod is { Length: > 0 }
            ? (fromPod, $"pod {podNamespace}/{podName}")
            : throw new KubeSubnetStoreException($"node name not present in pod spec '{podNamespace}/{podName}'");
    }
}
