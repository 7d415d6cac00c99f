namespace Flannel.Subnets;

/// <summary>
/// Flannel's lease value JSON, byte for byte:
/// <c>{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}</c>
/// (Go field order; <c>PublicIPv6</c> is always written; the backend fields are omitted when empty).
/// </summary>
public static class LeaseJson
{
    /// <summary>Writes the attributes as flannel writes them.</summary>
    public static byte[] SerializeToUtf8Bytes(LeaseAttributes attributes) =>
        throw new NotImplementedException("Implemented by the foundation work (issue 2).");

    /// <summary>Writes the attributes as flannel writes them, as a string.</summary>
    public static string Serialize(LeaseAttributes attributes) =>
        throw new NotImplementedException("Implemented by the foundation work (issue 2).");

    /// <summary>Reads a lease value written by any flannel-compatible writer.</summary>
    /// <exception cref="LeaseFormatException">The value is malformed; the message names the field and the value.</exception>
    public static LeaseAttributes Deserialize(ReadOnlySpan<byte> utf8Json) =>
        throw new NotImplementedException("Implemented by the foundation work (issue 2).");
}

/// <summary>A lease value could not be read. The message names the field and the value.</summary>
public sealed class LeaseFormatException : FormatException
{
    /// <summary>Creates the exception.</summary>
    public LeaseFormatException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public LeaseFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public LeaseFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
