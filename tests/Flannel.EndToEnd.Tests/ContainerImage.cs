using System.Diagnostics;
using Flannel.Testing;
using Flannel.Testing.Namespaces;


namespace Flannel.EndToEnd.Tests;

/// <summary>
/// The flanneld OCI image that scripts/build-image.sh built (<c>FLANNEL_IMAGE</c> names the archive; scripts/test.sh
/// builds it), loaded into podman's local storage once per test class and removed again afterwards. No registry is
/// involved. podman runs it with runc (crun refuses this kernel's hybrid cgroup layout) and with explicit file and
/// process limits (podman's defaults ask for more than a runtime may set here).
/// </summary>
public sealed class ContainerImage : IAsyncLifetime
{
    /// <summary>The archive to load, e.g. <c>.ci-work/flanneld.oci.tar</c>.</summary>
    public static string? ArchivePath => Environment.GetEnvironmentVariable("FLANNEL_IMAGE") is { Length: > 0 } path ? path : null;

    /// <summary>The image name, as loaded (the archive's reference).</summary>
    public string Name { get; private set; } = "";

    private bool _loaded;

    public async ValueTask InitializeAsync()
    {
        if (!Privileged.IsRoot || ArchivePath is not { } archive || !File.Exists(archive) || Privileged.FindExecutable("podman") is null)
        {
            return; // each test reports what is missing (RequirePrerequisites)
        }

        ProcessResult load = await NetworkNamespace.RunProcessAsync(["podman", "load", "-i", archive], CancellationToken.None);
        if (load.ExitCode != 0)
        {
            throw new InvalidOperationException($"podman load -i {archive} failed: {load.StandardError}");
        }

        // "Loaded image: docker.io/flannel-dotnet/flanneld:0.1.0"
        Name = load.StandardOutput.Split('\n').Select(l => l.Trim()).Last(l => l.StartsWith("Loaded image", StringComparison.Ordinal)).Split(' ').Last();
        _loaded = true;
    }

    public async ValueTask DisposeAsync()
    {
        if (_loaded)
        {
            await NetworkNamespace.RunProcessAsync(["podman", "rmi", "--force", Name], CancellationToken.None);
        }
    }

    /// <summary>Checks what the container tests need (root, podman, runc, the loaded image) or skips/fails.</summary>
    public void RequirePrerequisites()
    {
        Privileged.RequireRoot();
        Privileged.RequireExecutable("podman");
        Privileged.RequireExecutable("runc");
        Privileged.Require(ArchivePath is not null, "FLANNEL_IMAGE must name the image archive (scripts/build-image.sh builds it; scripts/test.sh sets it)");
        Privileged.Require(File.Exists(ArchivePath!), $"the image archive {ArchivePath} does not exist");
        Privileged.Require(_loaded, "the image could not be loaded into podman");
    }

    /// <summary>
    /// <c>podman run</c> up to the image name: only NET_ADMIN and NET_RAW, the given network namespace (or none), and bind
    /// mounts (host path, container path; a <c>:ro</c> suffix on the container path makes one read-only).
    /// </summary>
    public string[] RunArguments(string containerName, string? networkNamespacePath, IEnumerable<(string Host, string Container)> mounts, params string[] extra)
    {
        List<string> arguments =
        [
            "--runtime", "runc", "run", "--rm", "--name", containerName,
            "--cap-drop", "all", "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
            "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
            "--network", networkNamespacePath is null ? "none" : $"ns:{networkNamespacePath}",
        ];
        foreach ((string host, string container) in mounts)
        {
            arguments.Add("--volume");
            arguments.Add($"{host}:{container}");
        }

        arguments.AddRange(extra);
        return [.. arguments];
    }

    /// <summary>Runs the image to completion: <c>podman run … IMAGE args</c>.</summary>
    public Task<ProcessResult> RunAsync(IEnumerable<(string Host, string Container)> mounts, string[] runOptions, params string[] args) =>
        NetworkNamespace.RunProcessAsync(
            ["podman", .. RunArguments($"fe2e-{Guid.NewGuid():N}"[..20], null, mounts, runOptions), Name, .. args],
            CancellationToken.None);

    /// <summary>Removes a container that may still exist (a test that failed half way).</summary>
    public static Task RemoveContainerAsync(string name) =>
        NetworkNamespace.RunProcessAsync(["podman", "rm", "--force", "--ignore", name], CancellationToken.None);

    public Task<ProcessResult> InspectAsync(string format) =>
        NetworkNamespace.RunProcessAsync(["podman", "image", "inspect", "--format", format, Name], CancellationToken.None);
}
