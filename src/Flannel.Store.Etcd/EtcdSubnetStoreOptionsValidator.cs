using Microsoft.Extensions.Options;

namespace Flannel.Store.Etcd;

/// <summary>The data-annotation checks of <see cref="EtcdSubnetStoreOptions"/> (source-generated).</summary>
[OptionsValidator]
internal sealed partial class EtcdSubnetStoreOptionsAnnotationsValidator : IValidateOptions<EtcdSubnetStoreOptions>
{
}

/// <summary>The checks that span fields or touch the file system: endpoints, TLS files, prefix, credentials.</summary>
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
}
