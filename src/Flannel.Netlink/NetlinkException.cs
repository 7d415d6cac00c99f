namespace Flannel.Netlink;

/// <summary>
/// The kernel refused a netlink request. Carries the operation (e.g. <c>RTM_NEWROUTE</c>), the errno with
/// its symbolic name, the request's sequence number, and the kernel's extended-ack message and offset.
/// </summary>
public sealed class NetlinkException : Exception
{
    private const int Eexist = 17;
    private const int Enoent = 2;
    private const int Esrch = 3;
    private const int Enodev = 19;

    /// <summary>Creates the exception.</summary>
    public NetlinkException()
        : this("netlink request failed")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public NetlinkException(string message)
        : base(message)
    {
        Operation = string.Empty;
        ErrorName = string.Empty;
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public NetlinkException(string message, Exception innerException)
        : base(message, innerException)
    {
        Operation = string.Empty;
        ErrorName = string.Empty;
    }

    /// <summary>Creates the exception for a kernel error reply.</summary>
    /// <param name="operation">The request type, e.g. <c>RTM_NEWROUTE</c>.</param>
    /// <param name="errno">The positive errno.</param>
    /// <param name="errorName">The symbolic errno, e.g. <c>EEXIST</c>.</param>
    /// <param name="sequence">The request's sequence number.</param>
    /// <param name="extendedAckMessage">NLMSGERR_ATTR_MSG, if the kernel sent one.</param>
    /// <param name="extendedAckOffset">NLMSGERR_ATTR_OFFS, if the kernel sent one.</param>
    /// <param name="detail">What was being done, e.g. <c>10.244.2.0/24 via 10.244.2.0 dev flannel.1</c>.</param>
    public NetlinkException(string operation, int errno, string errorName, uint sequence, string? extendedAckMessage, uint? extendedAckOffset, string? detail = null)
        : base(BuildMessage(operation, errno, errorName, extendedAckMessage, detail))
    {
        Operation = operation;
        Errno = errno;
        ErrorName = errorName;
        Sequence = sequence;
        ExtendedAckMessage = extendedAckMessage;
        ExtendedAckOffset = extendedAckOffset;
        HResult = errno;
    }

    /// <summary>The request type, e.g. <c>RTM_NEWROUTE</c>.</summary>
    public string Operation { get; }

    /// <summary>The positive errno.</summary>
    public int Errno { get; }

    /// <summary>The symbolic errno, e.g. <c>ENOENT</c>.</summary>
    public string ErrorName { get; }

    /// <summary>The request's sequence number.</summary>
    public uint Sequence { get; }

    /// <summary>The kernel's extended-ack text, if any.</summary>
    public string? ExtendedAckMessage { get; }

    /// <summary>The byte offset in the request that the extended ack points at, if any.</summary>
    public uint? ExtendedAckOffset { get; }

    /// <summary>EEXIST: the object already exists.</summary>
    public bool IsExists => Errno == Eexist;

    /// <summary>ENOENT, ESRCH or ENODEV: the object (or the device) does not exist.</summary>
    public bool IsNotFound => Errno is Enoent or Esrch or Enodev;

    private static string BuildMessage(string operation, int errno, string errorName, string? ack, string? detail)
    {
        string text = $"{operation} failed: {errorName} ({errno})";
        if (!string.IsNullOrEmpty(detail))
        {
            text += $" for {detail}";
        }

        if (!string.IsNullOrEmpty(ack))
        {
            text += $": {ack}";
        }

        return text;
    }
}
