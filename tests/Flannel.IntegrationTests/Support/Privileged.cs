using Xunit;

namespace Flannel.Testing;

/// <summary>
/// Gate for tests that need root (network namespaces, real netlink sockets, iptables) or a real server.
/// Outside CI such a test is skipped with the reason; with <c>CI=true</c> it fails instead, so CI can never
/// pass while silently skipping the kernel tests.
/// </summary>
public static class Privileged
{
    /// <summary>True when running under CI (<c>CI=true</c>).</summary>
    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>True when the process runs as root on Linux.</summary>
    public static bool IsRoot => OperatingSystem.IsLinux() && Tmds.Linux.LibC.geteuid() == 0;

    /// <summary>Skips (or under CI fails) the current test unless it runs as root on Linux.</summary>
    public static void RequireRoot() => Require(IsRoot, "this test needs root on Linux (network namespaces and netlink)");

    /// <summary>Skips (or under CI fails) the current test unless <paramref name="condition"/> holds.</summary>
    public static void Require(bool condition, string reason)
    {
        if (condition)
        {
            return;
        }

        if (IsCi)
        {
            Assert.Fail($"Privileged test cannot run under CI=true: {reason}.");
        }

        Assert.Skip(reason);
    }

    /// <summary>Skips (or under CI fails) unless <paramref name="executable"/> is found on PATH or at its absolute path.</summary>
    public static string RequireExecutable(string executable)
    {
        string? found = FindExecutable(executable);
        Require(found is not null, $"'{executable}' is not installed");
        return found!;
    }

    /// <summary>Finds an executable on PATH (or checks an absolute path).</summary>
    public static string? FindExecutable(string executable) => Namespaces.NetworkNamespace.FindExecutable(executable);
}
