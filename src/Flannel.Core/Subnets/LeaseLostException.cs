namespace Flannel.Subnets;

/// <summary>
/// This node's lease no longer exists in the store, or now belongs to another node. Stores never overwrite
/// another node's lease; the keep-alive loop reacts by acquiring a lease again.
/// </summary>
public sealed class LeaseLostException : Exception
{
    /// <summary>Creates the exception.</summary>
    public LeaseLostException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public LeaseLostException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public LeaseLostException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
