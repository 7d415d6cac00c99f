using Microsoft.Extensions.Options;

namespace Flannel.Store.Kube;

/// <summary>
/// Checks <see cref="KubeSubnetStoreOptions"/> when the host starts, so that a bad flag fails fast with a
/// message naming the option and its value rather than deep inside the first API call.
/// </summary>
internal sealed class KubeSubnetStoreOptionsValidator : IValidateOptions<KubeSubnetStoreOptions>
{
    public ValidateOptionsResult Validate(string? name, KubeSubnetStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        List<string> failures = [];

        if (!string.IsNullOrEmpty(options.ApiUrl)
            && (!Uri.TryCreate(options.ApiUrl, UriKind.Absolute, out Uri? api) || (api.Scheme != Uri.UriSchemeHttp && api.Scheme != Uri.UriSchemeHttps)))
        {
            failures.Add($"ApiUrl '{options.ApiUrl}' is not an absolute http:// or https:// URL (--kube-api-url).");
        }

        if (!string.IsNullOrEmpty(options.KubeconfigFile) && !File.Exists(options.KubeconfigFile))
        {
            failures.Add($"KubeconfigFile '{options.KubeconfigFile}' does not exist (--kubeconfig-file).");
        }

        if (!AnnotationNames.TryCreate(options.AnnotationPrefix, out _, out string? prefixError))
        {
            failures.Add($"AnnotationPrefix '{options.AnnotationPrefix}': {prefixError} (--kube-annotation-prefix).");
        }

        if (string.IsNullOrWhiteSpace(options.NetConfigPath))
        {
            failures.Add("NetConfigPath must name the net-conf.json file (--net-config-path).");
        }

        if (options.NodeName is { } node && string.IsNullOrWhiteSpace(node))
        {
            failures.Add("NodeName, when set, must not be blank.");
        }

        CheckPositive(failures, nameof(options.PatchRetryInterval), options.PatchRetryInterval);
        CheckPositive(failures, nameof(options.PatchRetryTimeout), options.PatchRetryTimeout);
        CheckPositive(failures, nameof(options.WatchMinBackoff), options.WatchMinBackoff);
        CheckPositive(failures, nameof(options.WatchTimeout), options.WatchTimeout);
        if (options.ListPageSize < 1)
        {
            failures.Add($"ListPageSize must be at least 1, not {options.ListPageSize}.");
        }

        if (options.WatchMaxBackoff < options.WatchMinBackoff)
        {
            failures.Add($"WatchMaxBackoff ({options.WatchMaxBackoff}) must not be shorter than WatchMinBackoff ({options.WatchMinBackoff}).");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void CheckPositive(List<string> failures, string option, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            failures.Add($"{option} must be positive, not {value}.");
        }
    }
}
