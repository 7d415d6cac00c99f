using System.Security.Cryptography;

namespace Flannel.Backends.WireGuard.Keys;

// Design note: WireGuard keys are X25519 (RFC 7748) key pairs. .NET 10 has no X25519 in the base library
// (System.Security.Cryptography's ECDiffieHellman covers the NIST curves only), the brief rules out shelling out to
// `wg genkey`/`wg pubkey` at run time, and a whole crypto package would be a heavy dependency for one scalar
// multiplication at startup. So this is the Montgomery ladder of RFC 7748 section 5 over GF(2^255 - 19), written
// in the constant-time style of TweetNaCl: field elements are 16 signed 64-bit limbs of 16 bits, every branch on
// secret data is a masked swap, and there are no table look-ups indexed by secrets. It is checked against the
// RFC 7748 test vectors (section 5.2, the iterated vectors, and the Diffie-Hellman example of section 6.1) and
// against `wg pubkey` in the tests.

/// <summary>X25519 (RFC 7748): the scalar multiplication WireGuard derives public keys with.</summary>
internal static class X25519
{
    /// <summary>Scalar and u-coordinate length.</summary>
    public const int KeyLength = 32;

    private const int Limbs = 16;

    /// <summary>(A - 2) / 4 for Curve25519's A = 486662, i.e. 121665, as limbs.</summary>
    private static ReadOnlySpan<long> A24 => [0xDB41, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    /// <summary>
    /// Computes X25519(<paramref name="scalar"/>, <paramref name="point"/>) into <paramref name="result"/>. The scalar
    /// is clamped as RFC 7748 decodeScalar25519 does; the top bit of the u-coordinate is ignored.
    /// </summary>
    public static void ScalarMultiply(ReadOnlySpan<byte> scalar, ReadOnlySpan<byte> point, Span<byte> result)
    {
        if (scalar.Length != KeyLength || point.Length != KeyLength || result.Length < KeyLength)
        {
            throw new ArgumentException("X25519 takes a 32-byte scalar and a 32-byte u-coordinate.");
        }

        Span<byte> clamped = stackalloc byte[KeyLength];
        scalar.CopyTo(clamped);
        Clamp(clamped);

        Span<long> x = stackalloc long[Limbs];
        Span<long> a = stackalloc long[Limbs];
        Span<long> b = stackalloc long[Limbs];
        Span<long> c = stackalloc long[Limbs];
        Span<long> d = stackalloc long[Limbs];
        Span<long> e = stackalloc long[Limbs];
        Span<long> f = stackalloc long[Limbs];
        Unpack(x, point);
        x.CopyTo(b);
        a.Clear();
        c.Clear();
        d.Clear();
        a[0] = 1;
        d[0] = 1;

        for (int i = 254; i >= 0; i--)
        {
            long bit = (clamped[i >> 3] >> (i & 7)) & 1;
            Swap(a, b, bit);
            Swap(c, d, bit);
            Add(e, a, c);
            Subtract(a, a, c);
            Add(c, b, d);
            Subtract(b, b, d);
            Multiply(d, e, e);
            Multiply(f, a, a);
            Multiply(a, c, a);
            Multiply(c, b, e);
            Add(e, a, c);
            Subtract(a, a, c);
            Multiply(b, a, a);
            Subtract(c, d, f);
            Multiply(a, c, A24);
            Add(a, a, d);
            Multiply(c, c, a);
            Multiply(a, d, f);
            Multiply(d, b, x);
            Multiply(b, e, e);
            Swap(a, b, bit);
            Swap(c, d, bit);
        }

        Invert(c, c);
        Multiply(a, a, c);
        Pack(result, a);

        CryptographicOperations.ZeroMemory(clamped);
        CryptographicOperations.ZeroMemory(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a));
        CryptographicOperations.ZeroMemory(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b));
        CryptographicOperations.ZeroMemory(System.Runtime.InteropServices.MemoryMarshal.AsBytes(c));
        CryptographicOperations.ZeroMemory(System.Runtime.InteropServices.MemoryMarshal.AsBytes(d));
        CryptographicOperations.ZeroMemory(System.Runtime.InteropServices.MemoryMarshal.AsBytes(e));
        CryptographicOperations.ZeroMemory(System.Runtime.InteropServices.MemoryMarshal.AsBytes(f));
    }

    /// <summary>X25519(<paramref name="scalar"/>, 9): the public key of a private key.</summary>
    public static void PublicKey(ReadOnlySpan<byte> scalar, Span<byte> result)
    {
        Span<byte> basePoint = stackalloc byte[KeyLength];
        basePoint.Clear();
        basePoint[0] = 9;
        ScalarMultiply(scalar, basePoint, result);
    }

    /// <summary>RFC 7748 decodeScalar25519: clear the 3 low bits and the top bit, set bit 254.</summary>
    public static void Clamp(Span<byte> scalar)
    {
        scalar[0] &= 248;
        scalar[31] &= 127;
        scalar[31] |= 64;
    }

    private static void Unpack(Span<long> o, ReadOnlySpan<byte> n)
    {
        for (int i = 0; i < Limbs; i++)
        {
            o[i] = n[2 * i] + ((long)n[(2 * i) + 1] << 8);
        }

        o[15] &= 0x7fff;
    }

    /// <summary>Reduces fully mod 2^255 - 19 (two conditional subtractions, done with masks) and serialises.</summary>
    private static void Pack(Span<byte> o, ReadOnlySpan<long> n)
    {
        Span<long> m = stackalloc long[Limbs];
        Span<long> t = stackalloc long[Limbs];
        n.CopyTo(t);
        Carry(t);
        Carry(t);
        Carry(t);
        for (int j = 0; j < 2; j++)
        {
            m[0] = t[0] - 0xffed;
            for (int i = 1; i < 15; i++)
            {
                m[i] = t[i] - 0xffff - ((m[i - 1] >> 16) & 1);
                m[i - 1] &= 0xffff;
            }

            m[15] = t[15] - 0x7fff - ((m[14] >> 16) & 1);
            long borrow = (m[15] >> 16) & 1;
            m[14] &= 0xffff;
            Swap(t, m, 1 - borrow);
        }

        for (int i = 0; i < Limbs; i++)
        {
            o[2 * i] = (byte)(t[i] & 0xff);
            o[(2 * i) + 1] = (byte)((t[i] >> 8) & 0xff);
        }
    }

    /// <summary>Propagates carries so each limb is back to 16 bits; 2^256 wraps to 38 (= 2 * 19).</summary>
    private static void Carry(Span<long> o)
    {
        for (int i = 0; i < Limbs; i++)
        {
            o[i] += 1L << 16;
            long carry = o[i] >> 16;
            if (i < 15)
            {
                o[i + 1] += carry - 1;
            }
            else
            {
                o[0] += 38 * (carry - 1);
            }

            o[i] -= carry << 16;
        }
    }

    /// <summary>Swaps <paramref name="p"/> and <paramref name="q"/> when <paramref name="bit"/> is 1, without branching.</summary>
    private static void Swap(Span<long> p, Span<long> q, long bit)
    {
        long mask = ~(bit - 1);
        for (int i = 0; i < Limbs; i++)
        {
            long t = mask & (p[i] ^ q[i]);
            p[i] ^= t;
            q[i] ^= t;
        }
    }

    private static void Add(Span<long> o, ReadOnlySpan<long> a, ReadOnlySpan<long> b)
    {
        for (int i = 0; i < Limbs; i++)
        {
            o[i] = a[i] + b[i];
        }
    }

    private static void Subtract(Span<long> o, ReadOnlySpan<long> a, ReadOnlySpan<long> b)
    {
        for (int i = 0; i < Limbs; i++)
        {
            o[i] = a[i] - b[i];
        }
    }

    /// <summary>Schoolbook product, then the top 15 limbs folded back times 38, then two carry passes.</summary>
    private static void Multiply(Span<long> o, ReadOnlySpan<long> a, ReadOnlySpan<long> b)
    {
        Span<long> t = stackalloc long[31];
        t.Clear();
        for (int i = 0; i < Limbs; i++)
        {
            for (int j = 0; j < Limbs; j++)
            {
                t[i + j] += a[i] * b[j];
            }
        }

        for (int i = 0; i < 15; i++)
        {
            t[i] += 38 * t[i + 16];
        }

        t[..Limbs].CopyTo(o);
        Carry(o);
        Carry(o);
    }

    /// <summary>i^(p - 2) by square-and-multiply over the fixed exponent 2^255 - 21 (Fermat).</summary>
    private static void Invert(Span<long> o, ReadOnlySpan<long> i)
    {
        Span<long> c = stackalloc long[Limbs];
        i.CopyTo(c);
        for (int a = 253; a >= 0; a--)
        {
            Multiply(c, c, c);
            if (a != 2 && a != 4)
            {
                Multiply(c, c, i);
            }
        }

        c.CopyTo(o);
    }
}
