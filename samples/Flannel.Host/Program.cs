// flanneld: the Flannel.NET reference host. Parses flanneld's flags (and FLANNELD_* variables), then runs one agent
// in the network namespace it was started in, against etcd (default) or the Kubernetes API (--kube-subnet-mgr).
using Flannel.Host.Cli;
using Flannel.Host.Hosting;

return await FlanneldCommandLine.InvokeAsync(
    args,
    Environment.GetEnvironmentVariables(),
    FlanneldHost.RunAsync).ConfigureAwait(false);
