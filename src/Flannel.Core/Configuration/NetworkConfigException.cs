namespace Flannel.Configuration;

/// <summary>
/// The network configuration is not valid. <see cref="Exception.Message"/> carries flannel's error text
/// where flannel has one, and otherwise names the field and the value.
/// </summary>
public sealed class NetworkConfigException : Exception
{
    /// <summary>Creates the exception.</summary>
    public NetworkConfigException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public NetworkConfigException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public NetworkConfigException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for one field.</summary>
    public NetworkConfigException(string message, string? field, string? value, Exception? innerException = null)
        : base(message, innerException)
    {
        Field = field;
        Value = value;
    }

    /// <summary>The configuration field at fault, e.g. <c>SubnetMin</c>, when one is known.</summary>
    public string? Field { get; }

    /// <summary>The offending value as written in the configuration, when one is known.</summary>
    public string? Value { get; }
}
