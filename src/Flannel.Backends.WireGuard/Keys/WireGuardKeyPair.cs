using System.Security.Cryptography;
using Flannel.Netlink.WireGuard;

namespace Flannel.Backends.WireGuard.Keys;

/// <summary>A WireGuard private key and the public key derived from it.</summary>
public sealed class WireGuardKeyPair
{
    private WireGuardKeyPair(WireGuardKey privateKey, WireGuardKey publicKey)
    {
        PrivateKey = privateKey;
        PublicKey = publicKey;
    }

    /// <summary>The private key. Never log it.</summary>
    public WireGuardKey PrivateKey { get; }

    /// <summary>The public key peers know this node by (published in the lease's BackendData).</summary>
    public WireGuardKey PublicKey { get; }

    /// <summary>
    /// A new key pair from the system's cryptographic random generator, clamped as <c>wg genkey</c> and
    /// wgctrl's <c>GeneratePrivateKey</c> clamp it.
    /// </summary>
    public static WireGuardKeyPair Generate()
    {
        Span<byte> secret = stackalloc byte[WireGuardKey.Length];
        RandomNumberGenerator.Fill(secret);
        X25519.Clamp(secret);
        try
        {
            return FromPrivateKey(new WireGuardKey(secret));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    /// <summary>The pair for an existing private key (<c>wg pubkey</c>).</summary>
    public static WireGuardKeyPair FromPrivateKey(WireGuardKey privateKey)
    {
        Span<byte> secret = stackalloc byte[WireGuardKey.Length];
        Span<byte> publicKey = stackalloc byte[WireGuardKey.Length];
        privateKey.CopyTo(secret);
        try
        {
            X25519.PublicKey(secret, publicKey);
            return new WireGuardKeyPair(privateKey, new WireGuardKey(publicKey));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    /// <summary>Shows the public key only.</summary>
    public override string ToString() => $"WireGuard key pair (public {PublicKey})";
}
