using Flannel.Host.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using static Tmds.Linux.LibC;

namespace Flannel.Host.Tests.Hosting;

public sealed class StartupPageReleaseTests : IDisposable
{
    private const int Length = 64 << 10;

    private readonly string _path = Path.Combine(Path.GetTempPath(), $"flannel-page-release-{Guid.NewGuid():N}");

    public StartupPageReleaseTests()
    {
        byte[] content = new byte[Length];
        for (int i = 0; i < content.Length; i++)
        {
            content[i] = (byte)(i * 7);
        }

        File.WriteAllBytes(_path, content);
    }

    public void Dispose() => File.Delete(_path);

    [Fact]
    public void Parses_the_mappings_of_a_real_smaps_file()
    {
        // An excerpt of /proc/<pid>/smaps of the native flanneld, 5,000 etcd peers, kernel 6.18 (2026-12-01): the
        // binary's code, its read-only data with relocated (anonymous) pages, its writable data, the heap and a
        // library's code. Fields that the release does not read are cut short.
        const string Smaps = """
            55d21d835000-55d21e194000 r-xp 0001d000 00:23 1234                       /opt/bin/flanneld
            Size:               9596 kB
            Rss:                3740 kB
            Pss:                3740 kB
            Anonymous:             0 kB
            VmFlags: rd ex mr mw me sd
            55d21e7cf000-55d21e7d1000 r--p 00fbc000 00:23 1234                       /opt/bin/flanneld
            Size:                  8 kB
            Rss:                   8 kB
            Anonymous:             8 kB
            VmFlags: rd mr mw me ac sd
            55d21e7d1000-55d21ee0b000 rw-p 00fbe000 00:23 1234                       /opt/bin/flanneld
            Size:               6376 kB
            Rss:                6376 kB
            Anonymous:          6148 kB
            VmFlags: rd wr mr mw me ac sd
            55d221885000-55d22192a000 rw-p 00000000 00:00 0                          [heap]
            Size:                660 kB
            Rss:                 532 kB
            Anonymous:           532 kB
            VmFlags: rd wr mr mw me ac sd
            7f950e351000-7f950e4a7000 r-xp 00026000 fe:01 5678                       /usr/lib/x86_64-linux-gnu/libc.so.6
            Size:               1368 kB
            Rss:                1056 kB
            Anonymous:             0 kB
            VmFlags: rd ex mr mw me sd
            7f950e5f8000-7f950e600000 r--p 00000000 fe:01 9999                       /usr/lib/old.so (deleted)
            Size:                 32 kB
            Rss:                  32 kB
            Anonymous:             0 kB
            VmFlags: rd mr mw me sd
            """;

        List<StartupPageRelease.Mapping> mappings = StartupPageRelease.Parse(Smaps);

        Assert.Equal(
            [
                new(0x55d21d835000, 0x55d21e194000, IsReadOnlyFile: true, ResidentKiB: 3740, AnonymousKiB: 0),
                new(0x55d21e7cf000, 0x55d21e7d1000, IsReadOnlyFile: true, ResidentKiB: 8, AnonymousKiB: 8),
                new(0x55d21e7d1000, 0x55d21ee0b000, IsReadOnlyFile: false, ResidentKiB: 6376, AnonymousKiB: 6148),
                new(0x55d221885000, 0x55d22192a000, IsReadOnlyFile: false, ResidentKiB: 532, AnonymousKiB: 532),
                new(0x7f950e351000, 0x7f950e4a7000, IsReadOnlyFile: true, ResidentKiB: 1056, AnonymousKiB: 0),
                new(0x7f950e5f8000, 0x7f950e600000, IsReadOnlyFile: false, ResidentKiB: 32, AnonymousKiB: 0),
            ],
            mappings);
    }

    [Fact]
    public unsafe void Releases_a_read_only_file_mapping_whose_pages_read_back_the_same()
    {
        byte* pages = Map(PROT_READ);
        try
        {
            long sum = Sum(pages);
            Assert.Equal(Length >> 10, ResidentKiB(pages));

            StartupPageRelease.Result result = StartupPageRelease.ReleaseMappings(File.ReadAllText("/proc/self/smaps"));

            Assert.True(result.Mappings > 0);
            Assert.Equal(0, ResidentKiB(pages));
            Assert.Equal(sum, Sum(pages));
            Assert.Equal(File.ReadAllBytes(_path), new ReadOnlySpan<byte>(pages, Length).ToArray());
        }
        finally
        {
            Assert.Equal(0, munmap(pages, Length));
        }
    }

    [Fact]
    public unsafe void Keeps_a_read_only_mapping_that_holds_a_private_copy()
    {
        // What a debugger's breakpoint or a text relocation leaves: a page written through a private mapping, which
        // is then made read-only. Releasing it would bring the file's byte back.
        byte* pages = Map(PROT_READ | PROT_WRITE);
        try
        {
            pages[0] = 0x5A;
            Assert.Equal(0, mprotect(pages, Length, PROT_READ));

            StartupPageRelease.Result result = StartupPageRelease.ReleaseMappings(File.ReadAllText("/proc/self/smaps"));

            Assert.True(result.Skipped > 0);
            Assert.Equal(0x5A, pages[0]);
        }
        finally
        {
            Assert.Equal(0, munmap(pages, Length));
        }
    }

    [Fact]
    public void An_smaps_line_it_cannot_read_is_an_error_that_names_the_line()
    {
        FormatException error = Assert.Throws<FormatException>(() => StartupPageRelease.Parse("""
            55d21d835000-55d21e194000 r-xp 0001d000 00:23 1234                       /opt/bin/flanneld
            Rss:                lots kB
            """));

        Assert.Contains("Rss:                lots kB", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Release_reports_what_it_released()
    {
        StartupPageRelease.Result result = StartupPageRelease.Release(NullLogger.Instance);

        Assert.True(result.Mappings > 0);
        Assert.True(result.ResidentBytes > 0);
    }

    private unsafe byte* Map(int protection)
    {
        using Microsoft.Win32.SafeHandles.SafeFileHandle file = File.OpenHandle(_path);
        void* address = mmap(null, Length, protection, MAP_PRIVATE, (int)file.DangerousGetHandle(), 0);
        Assert.True(address != MAP_FAILED);
        return (byte*)address;
    }

    private static unsafe long Sum(byte* pages)
    {
        long sum = 0;
        for (int i = 0; i < Length; i++)
        {
            sum += pages[i];
        }

        return sum;
    }

    private static unsafe long ResidentKiB(byte* pages) =>
        StartupPageRelease.Parse(File.ReadAllText("/proc/self/smaps")).Single(m => m.Start == (ulong)pages).ResidentKiB;
}
