using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace Flannel.Netlink.WireGuard;

/// <summary>
/// A 32-byte WireGuard key (private, public or preshared), held by value. Its text form is standard base64 with
/// padding (44 characters), as <c>wg</c>, flannel's lease data and its key file write it; the userspace
/// configuration protocol uses lower-case hex instead (<see cref="ToHex"/>).
/// </summary>
public readonly struct WireGuardKey : IEquatable<WireGuardKey>
{
    /// <summary>The key length in bytes (<c>WG_KEY_LEN</c>).</summary>
    public const int Length = 32;

    /// <summary>Characters in the base64 form.</summary>
    public const int Base64Length = 44;

    private readonly KeyBytes _bytes;

    /// <summary>Copies a key from exactly 32 bytes.</summary>
    /// <exception cref="ArgumentException"><paramref name="bytes"/> is not 32 bytes long.</exception>
    public WireGuardKey(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Length)
        {
            throw new ArgumentException($"A WireGuard key is {Length} bytes, not {bytes.Length}.", nameof(bytes));
        }

        bytes.CopyTo(_bytes);
    }

    /// <summary>True for the all-zero key, which WireGuard reads as "no key" (e.g. to remove a preshared key).</summary>
    public bool IsZero => ((ReadOnlySpan<byte>)_bytes).IndexOfAnyExcept((byte)0) < 0;

    /// <summary>Parses the base64 form (44 characters). Surrounding whitespace, e.g. a key file's newline, is ignored.</summary>
    /// <exception cref="FormatException">The text is not the base64 form of 32 bytes.</exception>
    public static WireGuardKey Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!TryParse(text, out WireGuardKey key))
        {
            throw new FormatException($"'{Describe(text)}' is not a WireGuard key: expected {Base64Length} characters of base64 encoding {Length} bytes.");
        }

        return key;
    }

    /// <summary>Parses the base64 form; false when <paramref name="text"/> is not one.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out WireGuardKey key)
    {
        key = default;
        if (text is null)
        {
            return false;
        }

        ReadOnlySpan<char> trimmed = text.AsSpan().Trim();
        if (trimmed.Length != Base64Length)
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[Length + 1];
        if (!Convert.TryFromBase64Chars(trimmed, bytes, out int written) || written != Length)
        {
            return false;
        }

        key = new WireGuardKey(bytes[..Length]);
        return true;
    }

    /// <summary>Parses the 64-character lower- or upper-case hex form of the userspace protocol.</summary>
    /// <exception cref="FormatException">The text is not 64 hex digits.</exception>
    public static WireGuardKey ParseHex(ReadOnlySpan<char> hex)
    {
        if (hex.Length != Length * 2)
        {
            throw new FormatException($"A hex WireGuard key has {Length * 2} digits, not {hex.Length}.");
        }

        Span<byte> bytes = stackalloc byte[Length];
        if (Convert.FromHexString(hex, bytes, out _, out int written) != System.Buffers.OperationStatus.Done || written != Length)
        {
            throw new FormatException("A hex WireGuard key has a character that is not a hex digit.");
        }

        return new WireGuardKey(bytes);
    }

    /// <summary>A fresh random 32-byte key from the system's cryptographic generator (a preshared key as <c>wg genpsk</c> makes).</summary>
    public static WireGuardKey CreateRandom()
    {
        Span<byte> bytes = stackalloc byte[Length];
        RandomNumberGenerator.Fill(bytes);
        var key = new WireGuardKey(bytes);
        CryptographicOperations.ZeroMemory(bytes);
        return key;
    }

    /// <summary>Copies the 32 bytes into <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than 32 bytes.</exception>
    public void CopyTo(Span<byte> destination) => ((ReadOnlySpan<byte>)_bytes).CopyTo(destination);

    /// <summary>The base64 form, as <c>wg</c> prints it.</summary>
    public override string ToString() => Convert.ToBase64String(_bytes);

    /// <summary>The 64-digit lower-case hex form of the userspace configuration protocol.</summary>
    public string ToHex() => Convert.ToHexStringLower(_bytes);

    /// <inheritdoc />
    public bool Equals(WireGuardKey other) => ((ReadOnlySpan<byte>)_bytes).SequenceEqual(other._bytes);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is WireGuardKey other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = default(HashCode);
        hash.AddBytes(_bytes);
        return hash.ToHashCode();
    }

    /// <summary>Equality.</summary>
    public static bool operator ==(WireGuardKey left, WireGuardKey right) => left.Equals(right);

    /// <summary>Inequality.</summary>
    public static bool operator !=(WireGuardKey left, WireGuardKey right) => !left.Equals(right);

    /// <summary>Never echo a whole value that might be someone's private key into an error.</summary>
    private static string Describe(string text) => text.Length <= 8 ? text : text[..4] + "…(" + text.Length + " characters)";

    [InlineArray(Length)]
    private struct KeyBytes
    {
        private byte _element0;
    }
}
