namespace Flannel.Store.Kube;

/// <summary>
/// The Kubernetes subnet store cannot go on: the node's podCIDR does not fit the network config, the node
/// name cannot be found, the node cannot be patched, and so on. The message carries flannel's error text where
/// flannel has one.
/// </summary>
public sealed class KubeSubnetStoreException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KubeSubnetStoreException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public KubeSubnetStoreException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public KubeSubnetStoreException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
