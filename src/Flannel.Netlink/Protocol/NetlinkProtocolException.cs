namespace Flannel.Netlink.Protocol;

/// <summary>
/// The bytes received from the kernel (or handed to a reader) are not valid netlink: a length field points
/// outside its container, a header is shorter than its fixed size, an attribute has the wrong size for its
/// type. Distinct from <see cref="NetlinkException"/>, which is the kernel refusing a valid request.
/// </summary>
public sealed class NetlinkProtocolException : Exception
{
    /// <summary>Creates the exception.</summary>
    public NetlinkProtocolException()
        : base("malformed netlink data")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public NetlinkProtocolException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public NetlinkProtocolException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
