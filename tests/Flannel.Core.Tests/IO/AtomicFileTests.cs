using Flannel.IO;
using Flannel.Core.Tests.SubnetEnv;

namespace Flannel.Core.Tests.IO;

/// <summary>The one writer of small shared files: exact modes, replace or create-only, nothing left behind.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class AtomicFileTests
{
    private const UnixFileMode OwnerReadOnly = UnixFileMode.UserRead;
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode Executable = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    private static string[] Entries(string directory) => [.. Directory.GetFileSystemEntries(directory).Select(Path.GetFileName).Order(StringComparer.Ordinal)!];

    [Theory]
    [InlineData(OwnerReadOnly)]
    [InlineData(OwnerReadWrite)]
    [InlineData(Executable)]
    public void Write_creates_the_file_with_exactly_the_mode_asked_for(UnixFileMode mode)
    {
        using var temp = new TempDirectory();
        string path = Path.Combine(temp.Path, "file");

        AtomicFile.Write(path, "content"u8, mode);

        Assert.Equal("content", File.ReadAllText(path));
        Assert.Equal(mode, File.GetUnixFileMode(path));
        Assert.Equal(["file"], Entries(temp.Path));
    }

    [Fact]
    public void Write_replaces_the_content_and_the_mode_even_of_a_read_only_file()
    {
        using var temp = new TempDirectory();
        string path = Path.Combine(temp.Path, "file");
        AtomicFile.Write(path, "a longer first content"u8, OwnerReadOnly);

        AtomicFile.Write(path, "second"u8, Executable);

        Assert.Equal("second", File.ReadAllText(path));
        Assert.Equal(Executable, File.GetUnixFileMode(path));
        Assert.Equal(["file"], Entries(temp.Path));
    }

    [Fact]
    public void TryCreate_never_replaces_an_existing_file_and_leaves_no_temporary_file()
    {
        using var temp = new TempDirectory();
        string path = Path.Combine(temp.Path, "key");

        Assert.True(AtomicFile.TryCreate(path, "winner"u8, OwnerReadOnly));
        Assert.False(AtomicFile.TryCreate(path, "loser"u8, OwnerReadWrite));

        Assert.Equal("winner", File.ReadAllText(path));
        Assert.Equal(OwnerReadOnly, File.GetUnixFileMode(path));
        Assert.Equal(["key"], Entries(temp.Path));
    }

    [Fact]
    public void Racing_creators_agree_on_one_winner()
    {
        using var temp = new TempDirectory();
        string path = Path.Combine(temp.Path, "key");

        bool[] won = new bool[8];
        Parallel.For(0, won.Length, i => won[i] = AtomicFile.TryCreate(path, System.Text.Encoding.ASCII.GetBytes($"writer {i}"), OwnerReadOnly));

        int winner = Assert.Single(Enumerable.Range(0, won.Length), i => won[i]);
        Assert.Equal($"writer {winner}", File.ReadAllText(path));
        Assert.Equal(["key"], Entries(temp.Path));
    }

    [Fact]
    public void A_missing_directory_is_an_error_and_is_not_created()
    {
        using var temp = new TempDirectory();
        string path = Path.Combine(temp.Path, "missing", "file");

        Assert.ThrowsAny<IOException>(() => AtomicFile.Write(path, "x"u8, OwnerReadWrite));

        Assert.False(Directory.Exists(Path.Combine(temp.Path, "missing")));
    }

    [Fact]
    public void A_failed_write_leaves_the_previous_file_and_no_temporary_file()
    {
        using var temp = new TempDirectory();
        string path = Path.Combine(temp.Path, "file");
        AtomicFile.Write(path, "previous"u8, OwnerReadWrite);
        Directory.CreateDirectory(Path.Combine(temp.Path, "dir"));

        // A directory cannot be replaced by a file: the rename fails after the temporary file was written.
        Assert.ThrowsAny<IOException>(() => AtomicFile.Write(Path.Combine(temp.Path, "dir"), "new"u8, OwnerReadWrite));

        Assert.Equal("previous", File.ReadAllText(path));
        Assert.Equal(["dir", "file"], Entries(temp.Path));
    }
}
