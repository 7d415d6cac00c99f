using Flannel.Backends;

namespace Flannel.Agent.InterfaceSelection;

/// <summary>The chosen external interface and a sentence saying why it was chosen (logged at startup).</summary>
/// <param name="Interface">The interface, its addresses and the public addresses.</param>
/// <param name="Reason">Why this interface, e.g. <c>--iface-regex '^198\.18\.' matched address 198.18.0.2 of eth0</c>.</param>
public sealed record InterfaceSelectionResult(ExternalInterface Interface, string Reason);

/// <summary>No interface satisfies the selection flags; the message names the flag and what was available.</summary>
public sealed class InterfaceSelectionException : Exception
{
    /// <summary>Creates the exception.</summary>
    public InterfaceSelectionException()
        : this("no usable external interface")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public InterfaceSelectionException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public InterfaceSelectionException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
