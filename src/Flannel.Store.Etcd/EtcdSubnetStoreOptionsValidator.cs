using Microsoft.Extensions.Options;

namespace Flannel.Store.Etcd;

/// <summary>The data-annotation checks of <see cref="EtcdSubnetStoreOptions"/> (source-generated).</summary>
[OptionsValidator]
internal sealed partial class EtcdSubnetStoreOptionsAnnotationsValidator : IValidateOptions<EtcdSubnetStoreOptions>
{
}

/// <summary>
/// The checks that span fields or touch the file system (endpoints, TLS files, prefix, credentials), and the
/// TimeSpan ranges: <c>[Range(typeof(TimeSpan), …)]</c> converts its bounds through reflection, which trimming and
/// native AOT cannot keep (IL2026), so they are checked here.
/// </summary>
internal sealed class EtcdSubnetStoreOptionsValidator : IValidateOptions<EtcdSubnetStoreOptions>
{
    public ValidateOptionsResult Validate(string? name, EtcdSubnetStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (!string.IsNullOrWhiteSpace(options.Endpoints))
        {
            IReadOnlyList<EtcdEndpoint> endpoints = EtcdEndpoint.ParseList(options.Endpoints, out string? error);
            if (error is not null)
            {
                failures.Add($"Endpoints '{options.Endpoints}': {error}.");
            }
            else if (endpoints.Any(e => e.Https == true) && endpoints.Any(e => e.Https == false))
            {
                failures.Add($"Endpoints '{options.Endpoints}' mixes http:// and https://; use one scheme for all.");
            }
            else if (endpoints.Any(e => e.Https == false) && (!string.IsNullOrEmpty(options.CertFile) || !string.IsNullOrEmpty(options.CaFile)))
            {
                failures.Add($"Endpoints '{options.Endpoints}' use http:// but TLS files are set; use https:// endpoints.");
            }
        }

        if (!string.IsNullOrEmpty(options.Prefix) && !options.Prefix.StartsWith('/'))
        {
            failures.Add($"Prefix '{options.Prefix}' must start with '/', e.g. /coreos.com/network.");
        }

        if (string.IsNullOrEmpty(options.CertFile) != string.IsNullOrEmpty(options.KeyFile))
        {
            failures.Add($"CertFile ('{options.CertFile}') and KeyFile ('{options.KeyFile}') must be set together.");
        }

        foreach ((string field, string? path) in new[] { ("CertFile", options.CertFile), ("KeyFile", options.KeyFile), ("CaFile", options.CaFile) })
        {
            if (!string.IsNullOrEmpty(path) && !File.Exists(path))
            {
                failures.Add($"{field} '{path}' does not exist.");
            }
        }

        CheckRange(failures, nameof(options.LeaseTtl), options.LeaseTtl, TimeSpan.FromSeconds(2), TimeSpan.FromDays(365));
        CheckRange(failures, nameof(options.RequestTimeout), options.RequestTimeout, TimeSpan.FromMilliseconds(50), TimeSpan.FromMinutes(10));
        CheckRange(failures, nameof(options.WatchProgressInterval), options.WatchProgressInterval, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(10));
        CheckRange(failures, nameof(options.WatchTimeout), options.WatchTimeout, TimeSpan.FromMilliseconds(200), TimeSpan.FromHours(1));
        if (options.WatchProgressInterval >= options.WatchTimeout)
        {
            failures.Add($"WatchProgressInterval ({options.WatchProgressInterval}) must be shorter than WatchTimeout ({options.WatchTimeout}).");
        }

        if (string.IsNullOrEmpty(options.Username) && !string.IsNullOrEmpty(options.Password))
        {
            failures.Add("Password is set but Username is not.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void CheckRange(List<string> failures, string field, TimeSpan value, TimeSpan minimum, TimeSpan maximum)
    {
        if (value < minimum || value > maximum)
        {
            failures.Add($"{field} '{value}' must be between {minimum} and {maximum}.");
        }
    }
}
