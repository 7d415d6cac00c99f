// flanneld: the Flannel.NET reference host. Parses flanneld's flags (and FLANNELD_* variables), then runs one agent
// in the network namespace it was started in, against etcd (default) or the Kubernetes API (--kube-subnet-mgr).
// `flanneld install-cni` installs the CNI plugin and conflist instead (kube-flannel's init step).
using Flannel.Host.Cli;
using Flannel.Host.Hosting;
using Flannel.Host.InstallCni;

if (args.Length > 0 && args[0] == InstallCniCommand.Name && OperatingSystem.IsLinux())
{
    return InstallCniCommand.Run(args[1..], Console.Error);
}

return await FlanneldCommandLine.InvokeAsync(
    args,
    Environment.GetEnvironmentVariables(),
    FlanneldHost.RunAsync).ConfigureAwait(false);
