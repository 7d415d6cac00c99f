using System.Globalization;

namespace Flannel.Store.Etcd;

/// <summary>One etcd endpoint of the <see cref="EtcdSubnetStoreOptions.Endpoints"/> list.</summary>
internal readonly record struct EtcdEndpoint(string Host, int Port, bool? Https)
{
    private const int DefaultPort = 2379;

    /// <summary>Parses <c>http://h:p</c>, <c>https://h:p</c>, <c>h:p</c>, <c>h</c> or <c>[v6]:p</c>.</summary>
    public static bool TryParse(string text, out EtcdEndpoint endpoint, out string? error)
    {
        endpoint = default;
        error = null;
        string trimmed = text.Trim();
        if (trimmed.Length == 0)
        {
            error = "an endpoint is empty";
            return false;
        }

        bool? https = null;
        string withScheme = trimmed;
        if (trimmed.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            https = true;
        }
        else if (trimmed.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        {
            https = false;
        }
        else if (trimmed.Contains("://", StringComparison.Ordinal))
        {
            error = $"endpoint '{trimmed}' has an unsupported scheme (use http:// or https://)";
            return false;
        }
        else
        {
            withScheme = "http://" + trimmed;
        }

        if (!Uri.TryCreate(withScheme, UriKind.Absolute, out Uri? uri) || string.IsNullOrEmpty(uri.Host)
            || (uri.AbsolutePath != "/" && uri.AbsolutePath.Length != 0) || !string.IsNullOrEmpty(uri.Query))
        {
            error = $"endpoint '{trimmed}' is not a URL of the form http(s)://host:port";
            return false;
        }

        // Uri reports 80/443 for a URL without a port; etcd's default is 2379, so look for an explicit one.
        string authority = withScheme[(withScheme.IndexOf("://", StringComparison.Ordinal) + 3)..].TrimEnd('/');
        bool explicitPort = authority.LastIndexOf(':') > authority.LastIndexOf(']');
        int port = explicitPort ? uri.Port : DefaultPort;
        endpoint = new EtcdEndpoint(uri.DnsSafeHost, port, https);
        return true;
    }

    /// <summary>Parses a comma-separated list.</summary>
    public static IReadOnlyList<EtcdEndpoint> ParseList(string list, out string? error)
    {
        var result = new List<EtcdEndpoint>();
        error = null;
        foreach (string part in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!TryParse(part, out EtcdEndpoint endpoint, out error))
            {
                return [];
            }

            result.Add(endpoint);
        }

        if (result.Count == 0)
        {
            error = "no endpoint given";
        }

        return result;
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{(Https == true ? "https" : "http")}://{(Host.Contains(':', StringComparison.Ordinal) ? "[" + Host + "]" : Host)}:{Port}");
}
