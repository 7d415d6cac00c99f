// Shared source: compiled into Flannel.Core (lease values) and Flannel.Backends.Vxlan (its BackendData), the two
// readers of flannel's Go structs. Internal in each; keep it dependency-free.
using System.Text;
using System.Text.Json;

namespace Flannel;

/// <summary>How Go's <c>encoding/json</c> matches an object's key to a struct field.</summary>
internal static class GoJsonNames
{
    /// <summary>
    /// True when the property name at <paramref name="reader"/> names the field <paramref name="name"/>: exactly or,
    /// as Go also accepts, in any case (<see cref="StringComparison.OrdinalIgnoreCase"/>). An unescaped ASCII name
    /// compares in place; only an escaped or non-ASCII one becomes a string.
    /// </summary>
    public static bool Matches(ref Utf8JsonReader reader, string name)
    {
        if (reader.ValueTextEquals(name))
        {
            return true;
        }

        return !reader.HasValueSequence && !reader.ValueIsEscaped && Ascii.IsValid(reader.ValueSpan)
            ? Ascii.EqualsIgnoreCase(reader.ValueSpan, name)
            : string.Equals(reader.GetString(), name, StringComparison.OrdinalIgnoreCase);
    }
}
