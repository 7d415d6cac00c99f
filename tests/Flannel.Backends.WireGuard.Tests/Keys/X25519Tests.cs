using Flannel.Backends.WireGuard.Keys;
using Flannel.Netlink.WireGuard;

namespace Flannel.Backends.WireGuard.Tests.Keys;

/// <summary>The X25519 implementation against RFC 7748 and against wireguard-tools.</summary>
public sealed class X25519Tests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex);

    private static string Multiply(string scalar, string point)
    {
        byte[] result = new byte[32];
        X25519.ScalarMultiply(Hex(scalar), Hex(point), result);
        return Convert.ToHexStringLower(result);
    }

    [Theory]
    // RFC 7748 section 5.2, the two test vectors.
    [InlineData(
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")]
    [InlineData(
        "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
        "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957")]
    public void Rfc7748_section_5_2_vectors(string scalar, string point, string expected) =>
        Assert.Equal(expected, Multiply(scalar, point));

    [Fact]
    public void Rfc7748_iterated_vector_after_1_and_1000_iterations()
    {
        // k = u = 9; each round: k, u = X25519(k, u), k.
        byte[] k = new byte[32];
        byte[] u = new byte[32];
        k[0] = 9;
        u[0] = 9;
        byte[] next = new byte[32];
        for (int i = 1; i <= 1000; i++)
        {
            X25519.ScalarMultiply(k, u, next);
            k.CopyTo(u, 0);
            next.CopyTo(k, 0);
            if (i == 1)
            {
                Assert.Equal("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079", Convert.ToHexStringLower(k));
            }
        }

        Assert.Equal("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51", Convert.ToHexStringLower(k));
    }

    [Fact]
    public void Rfc7748_section_6_1_diffie_hellman()
    {
        const string AlicePrivate = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
        const string BobPrivate = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
        const string AlicePublic = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
        const string BobPublic = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
        const string Shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

        Assert.Equal(AlicePublic, WireGuardKeyPair.FromPrivateKey(new WireGuardKey(Hex(AlicePrivate))).PublicKey.ToHex());
        Assert.Equal(BobPublic, WireGuardKeyPair.FromPrivateKey(new WireGuardKey(Hex(BobPrivate))).PublicKey.ToHex());
        Assert.Equal(Shared, Multiply(AlicePrivate, BobPublic));
        Assert.Equal(Shared, Multiply(BobPrivate, AlicePublic));
    }

    [Fact]
    public void Generated_keys_are_clamped_random_and_their_public_keys_agree_on_a_shared_secret()
    {
        WireGuardKeyPair a = WireGuardKeyPair.Generate();
        WireGuardKeyPair b = WireGuardKeyPair.Generate();
        Assert.NotEqual(a.PrivateKey, b.PrivateKey);
        byte[] secret = new byte[32];
        a.PrivateKey.CopyTo(secret);
        Assert.Equal(0, secret[0] & 7);
        Assert.Equal(0x40, secret[31] & 0xc0);

        byte[] ab = new byte[32], ba = new byte[32], bPublic = new byte[32], aPublic = new byte[32], bSecret = new byte[32];
        b.PublicKey.CopyTo(bPublic);
        a.PublicKey.CopyTo(aPublic);
        b.PrivateKey.CopyTo(bSecret);
        X25519.ScalarMultiply(secret, bPublic, ab);
        X25519.ScalarMultiply(bSecret, aPublic, ba);
        Assert.Equal(ab, ba);
        Assert.DoesNotContain(a.PrivateKey.ToString(), a.ToString(), StringComparison.Ordinal);
    }
}
