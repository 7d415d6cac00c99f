using Flannel.Backends.WireGuard.Keys;
using Flannel.Netlink.WireGuard;
using Microsoft.Extensions.Logging.Abstractions;

namespace Flannel.Backends.WireGuard.Tests.Keys;

public sealed class WireGuardKeyFileTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("wgkey-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void A_missing_key_file_is_created_with_mode_0400_and_flannels_format()
    {
        string path = Path.Combine(_directory, "run", "flannel", "wgkey");

        WireGuardKeyPair pair = WireGuardKeyFile.LoadOrCreate(path, NullLogger.Instance);

        Assert.Equal(UnixFileMode.UserRead, File.GetUnixFileMode(path));
        string text = File.ReadAllText(path);
        Assert.Equal(pair.PrivateKey.ToString(), text); // base64, no newline, as flannel's writePrivateKey
        Assert.Equal(44, text.Length);
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!)); // no temporary file left behind
    }

    [Fact]
    public void The_key_is_reused_across_restarts()
    {
        string path = Path.Combine(_directory, "wgkey");
        WireGuardKeyPair first = WireGuardKeyFile.LoadOrCreate(path, NullLogger.Instance);
        WireGuardKeyPair second = WireGuardKeyFile.LoadOrCreate(path, NullLogger.Instance);
        Assert.Equal(first.PrivateKey, second.PrivateKey);
        Assert.Equal(first.PublicKey, second.PublicKey);
    }

    [Fact]
    public void A_key_written_by_wg_genkey_with_its_newline_is_accepted()
    {
        string path = Path.Combine(_directory, "wgkey");
        WireGuardKeyPair pair = WireGuardKeyPair.Generate();
        File.WriteAllText(path, pair.PrivateKey + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead);
        Assert.Equal(pair.PublicKey, WireGuardKeyFile.LoadOrCreate(path, NullLogger.Instance).PublicKey);
    }

    [Fact]
    public void A_key_file_others_can_read_is_tightened_to_0400()
    {
        string path = Path.Combine(_directory, "wgkey");
        File.WriteAllText(path, WireGuardKeyPair.Generate().PrivateKey.ToString());
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        WireGuardKeyFile.LoadOrCreate(path, NullLogger.Instance);
        Assert.Equal(UnixFileMode.UserRead, File.GetUnixFileMode(path));
    }

    [Fact]
    public void A_corrupt_key_file_fails_with_the_path_and_without_echoing_the_content()
    {
        string path = Path.Combine(_directory, "wgkey");
        File.WriteAllText(path, "not-a-key-but-maybe-a-secret");
        WireGuardKeyFileException error = Assert.Throws<WireGuardKeyFileException>(() => WireGuardKeyFile.LoadOrCreate(path, NullLogger.Instance));
        Assert.StartsWith($"could not parse private key from file {path}", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("maybe-a-secret", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_path_comes_from_configuration_then_WIREGUARD_KEY_FILE_then_flannels_default()
    {
        string? saved = Environment.GetEnvironmentVariable(WireGuardKeyFile.PathEnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(WireGuardKeyFile.PathEnvironmentVariable, null);
            Assert.Equal("/run/flannel/wgkey", WireGuardKeyFile.ResolvePath(null));
            Environment.SetEnvironmentVariable(WireGuardKeyFile.PathEnvironmentVariable, "/etc/flannel/key");
            Assert.Equal("/etc/flannel/key", WireGuardKeyFile.ResolvePath(null));
            Assert.Equal("/x/y", WireGuardKeyFile.ResolvePath("/x/y"));
        }
        finally
        {
            Environment.SetEnvironmentVariable(WireGuardKeyFile.PathEnvironmentVariable, saved);
        }
    }

    [Fact]
    public void Keys_parse_and_print_as_base64_and_hex()
    {
        WireGuardKey key = WireGuardKeyPair.Generate().PublicKey;
        Assert.Equal(key, WireGuardKey.Parse(key.ToString()));
        Assert.Equal(key, WireGuardKey.ParseHex(key.ToHex()));
        Assert.False(WireGuardKey.TryParse("AAAA", out _));
        FormatException error = Assert.Throws<FormatException>(() => WireGuardKey.Parse("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"));
        Assert.DoesNotContain("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0", error.Message, StringComparison.Ordinal);
        Assert.True(default(WireGuardKey).IsZero);
        Assert.False(key.IsZero);
    }
}
