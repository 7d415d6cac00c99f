using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace Flannel.Store.Kube;

/// <summary>
/// The node annotation names flannel reads and writes, derived from <c>--kube-annotation-prefix</c> with
/// flannel's normalisation rules (<c>pkg/subnet/kube/annotations.go</c>).
/// </summary>
/// <remarks>
/// Normalisation: a prefix may contain at most one <c>/</c>; with none, <c>/</c> is appended; a prefix that
/// then ends in neither <c>/</c> nor <c>-</c> gets a <c>-</c>. The result must match
/// <c>(?:[a-z0-9_-]+\.)+[a-z0-9_-]+/(?:[a-z0-9_-]+-)?$</c>. So <c>flannel.alpha.coreos.com</c> gives
/// <c>flannel.alpha.coreos.com/backend-data</c> and <c>example.com/net</c> gives <c>example.com/net-backend-data</c>.
/// </remarks>
public sealed partial class AnnotationNames
{
    /// <summary>flannel's default prefix.</summary>
    public const string DefaultPrefix = "flannel.alpha.coreos.com";

    /// <summary>flannel's error text for a prefix with two or more slashes.</summary>
    public const string TooManySlashesError = "subnet/kube: prefix can contain at most single slash";

    /// <summary>flannel's error text for a prefix that is not an FQDN followed by an optional name part.</summary>
    public const string BadFormatError = "subnet/kube: prefix must be in a format: fqdn/[0-9a-z-_]*";

    private AnnotationNames(string normalizedPrefix)
    {
        NormalizedPrefix = normalizedPrefix;
        KubeSubnetManager = normalizedPrefix + "kube-subnet-manager";
        BackendData = normalizedPrefix + "backend-data";
        BackendV6Data = normalizedPrefix + "backend-v6-data";
        BackendType = normalizedPrefix + "backend-type";
        PublicIP = normalizedPrefix + "public-ip";
        PublicIPv6 = normalizedPrefix + "public-ipv6";
        NodePublicIP = normalizedPrefix + "node-public-ip";
        NodePublicIPv6 = normalizedPrefix + "node-public-ipv6";
        PublicIPOverwrite = normalizedPrefix + "public-ip-overwrite";
        PublicIPv6Overwrite = normalizedPrefix + "public-ipv6-overwrite";
    }

    /// <summary>The annotation names for the default prefix.</summary>
    public static AnnotationNames Default { get; } = Create(DefaultPrefix);

    /// <summary>The prefix after normalisation, e.g. <c>flannel.alpha.coreos.com/</c>.</summary>
    public string NormalizedPrefix { get; }

    /// <summary><c>…/kube-subnet-manager</c>: <c>"true"</c> on nodes run by a kube-mode flannel; other nodes are ignored.</summary>
    public string KubeSubnetManager { get; }

    /// <summary><c>…/backend-data</c>: the IPv4 backend data JSON.</summary>
    public string BackendData { get; }

    /// <summary><c>…/backend-v6-data</c>: the IPv6 backend data JSON.</summary>
    public string BackendV6Data { get; }

    /// <summary><c>…/backend-type</c>: <c>vxlan</c>, <c>host-gw</c>, …</summary>
    public string BackendType { get; }

    /// <summary><c>…/public-ip</c>: the IPv4 tunnel endpoint peers use.</summary>
    public string PublicIP { get; }

    /// <summary><c>…/public-ipv6</c>: the IPv6 tunnel endpoint peers use.</summary>
    public string PublicIPv6 { get; }

    /// <summary><c>…/node-public-ip</c>: set by the user; used as if given by <c>--public-ip</c>.</summary>
    public string NodePublicIP { get; }

    /// <summary><c>…/node-public-ipv6</c>: set by the user; used as if given by <c>--public-ipv6</c>.</summary>
    public string NodePublicIPv6 { get; }

    /// <summary><c>…/public-ip-overwrite</c>: set by the user; copied into <c>public-ip</c> (it need not be local).</summary>
    public string PublicIPOverwrite { get; }

    /// <summary><c>…/public-ipv6-overwrite</c>: set by the user; copied into <c>public-ipv6</c>.</summary>
    public string PublicIPv6Overwrite { get; }

    /// <summary>Creates the names for <paramref name="prefix"/>, throwing with flannel's error text when it is not valid.</summary>
    /// <exception cref="ArgumentException">The prefix breaks flannel's rules.</exception>
    public static AnnotationNames Create(string prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        return TryCreate(prefix, out AnnotationNames? names, out string? error)
            ? names
            : throw new ArgumentException($"{error} (prefix '{prefix}')", nameof(prefix));
    }

    /// <summary>Creates the names for <paramref name="prefix"/>; on failure <paramref name="error"/> holds flannel's error text.</summary>
    public static bool TryCreate(
        string? prefix,
        [NotNullWhen(true)] out AnnotationNames? names,
        [NotNullWhen(false)] out string? error)
    {
        names = null;
        prefix ??= string.Empty;
        int slashes = prefix.AsSpan().Count('/');
        if (slashes > 1)
        {
            error = TooManySlashesError;
            return false;
        }

        if (slashes == 0)
        {
            prefix += "/";
        }

        if (!prefix.EndsWith('/') && !prefix.EndsWith('-'))
        {
            prefix += "-";
        }

        if (!PrefixFormat().IsMatch(prefix))
        {
            error = BadFormatError;
            return false;
        }

        names = new AnnotationNames(prefix);
        error = null;
        return true;
    }

    // flannel's expression is unanchored at the start (Go's regexp.MatchString finds it anywhere), so
    // characters before the FQDN part are tolerated exactly as flannel tolerates them. Go's `$` is the end of
    // the text; .NET's `$` would also match before a final newline, hence `\z`.
    [GeneratedRegex(@"(?:[a-z0-9_-]+\.)+[a-z0-9_-]+/(?:[a-z0-9_-]+-)?\z", RegexOptions.CultureInvariant)]
    private static partial Regex PrefixFormat();
}
