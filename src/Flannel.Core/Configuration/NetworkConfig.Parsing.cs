namespace Flannel.Configuration;

public sealed partial record NetworkConfig
{
    /// <summary>
    /// Parses net-conf.json with Go <c>encoding/json</c> semantics (case-insensitive keys, unknown keys
    /// ignored). Applies no defaults beyond EnableIPv4=true and the backend type; see <see cref="Validate"/>.
    /// </summary>
    /// <exception cref="NetworkConfigException">The JSON is malformed or a field has the wrong type; the message names the field and value.</exception>
    public static NetworkConfig Parse(string json) =>
        throw new NotImplementedException("Implemented by the foundation work (issue 2).");

    /// <summary>
    /// Applies flannel's <c>CheckNetworkConfig</c>: computes SubnetLen, SubnetMin and SubnetMax (and the IPv6
    /// forms) and checks them, with flannel's exact error texts. Returns a new, complete configuration.
    /// </summary>
    /// <exception cref="NetworkConfigException">The configuration is not valid.</exception>
    public NetworkConfig Validate() =>
        throw new NotImplementedException("Implemented by the foundation work (issue 2).");
}
