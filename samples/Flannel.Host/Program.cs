// flanneld: the Flannel.NET reference host. Parses flanneld's flags (and FLANNELD_* variables), then runs one agent
// in the network namespace it was started in, against etcd (default) or the Kubernetes API (--kube-subnet-mgr).
// `flanneld install-cni` installs the CNI plugin and conflist instead (kube-flannel's init step); `flanneld status`
// prints the running agent's fabric status, `flanneld doctor` checks the node.
using Flannel.Host.Cli;
using Flannel.Host.Doctor;
using Flannel.Host.Hosting;
using Flannel.Host.InstallCni;
using Flannel.Host.Status;

if (args.Length > 0 && args[0] == InstallCniCommand.Name && OperatingSystem.IsLinux())
{
    return InstallCniCommand.Run(args[1..], Console.Error);
}

if (args.Length > 0 && args[0] == StatusCommand.Name)
{
    return await StatusCommand.RunAsync(args[1..], Console.Out, Console.Error, CancellationToken.None).ConfigureAwait(false);
}

if (args.Length > 0 && args[0] == DoctorCommand.Name)
{
    return await DoctorCommand.RunAsync(args[1..], Environment.GetEnvironmentVariables(), Console.Out, Console.Error, CancellationToken.None).ConfigureAwait(false);
}

return await FlanneldCommandLine.InvokeAsync(
    args,
    Environment.GetEnvironmentVariables(),
    FlanneldHost.RunAsync).ConfigureAwait(false);
