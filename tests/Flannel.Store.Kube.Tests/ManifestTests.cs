extern alias official;

using System.Text.Json.Nodes;
using Flannel.Configuration;
using official::k8s;
using official::k8s.Models;

namespace Flannel.Store.Kube.Tests;

/// <summary>deploy/kube-flannel.yml: the names, RBAC and config files must be flannel's, or a mixed cluster breaks.</summary>
public class ManifestTests
{
    private static readonly List<object> Objects =
        KubernetesYaml.LoadAllFromString(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "deploy", "kube-flannel.yml")));

    private static T Single<T>() => Assert.Single(Objects.OfType<T>());

    [Fact]
    public void The_cluster_role_grants_exactly_what_kube_mode_uses()
    {
        V1ClusterRole role = Single<V1ClusterRole>();

        Assert.Equal("flannel", role.Metadata.Name);
        string[] rules = [.. role.Rules.SelectMany(r => r.Resources.SelectMany(res => r.Verbs.Select(v => $"{string.Join(',', r.ApiGroups)}|{res}|{v}")))];
        Assert.Equal(["|pods|get", "|nodes|get", "|nodes|list", "|nodes|watch", "|nodes/status|patch"], rules);

        V1ClusterRoleBinding binding = Single<V1ClusterRoleBinding>();
        Assert.Equal("flannel", binding.RoleRef.Name);
        Rbacv1Subject subject = Assert.Single(binding.Subjects);
        Assert.Equal(("ServiceAccount", "flannel", "kube-flannel"), (subject.Kind, subject.Name, subject.NamespaceProperty));
        Assert.Equal(("flannel", "kube-flannel"), (Single<V1ServiceAccount>().Metadata.Name, Single<V1ServiceAccount>().Metadata.NamespaceProperty));
        Assert.Equal("privileged", Single<V1Namespace>().Metadata.Labels["pod-security.kubernetes.io/enforce"]);
    }

    [Fact]
    public void The_config_map_carries_flannels_files()
    {
        V1ConfigMap config = Single<V1ConfigMap>();

        Assert.Equal(("kube-flannel-cfg", "kube-flannel"), (config.Metadata.Name, config.Metadata.NamespaceProperty));
        Assert.True(JsonNode.DeepEquals(
            JsonNode.Parse("""{"name":"cbr0","cniVersion":"0.3.1","plugins":[{"type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}},{"type":"portmap","capabilities":{"portMappings":true}}]}"""),
            JsonNode.Parse(config.Data["cni-conf.json"])));
        Assert.True(JsonNode.DeepEquals(
            JsonNode.Parse("""{"Network":"10.244.0.0/16","EnableNFTables":false,"Backend":{"Type":"vxlan"}}"""),
            JsonNode.Parse(config.Data["net-conf.json"])));
        Assert.Equal("vxlan", NetworkConfig.Parse(config.Data["net-conf.json"]).BackendType);
    }

    [Fact]
    public void The_daemon_set_runs_flanneld_in_kube_mode_with_probes_and_only_network_capabilities()
    {
        V1DaemonSet daemonSet = Single<V1DaemonSet>();
        V1PodSpec pod = daemonSet.Spec.Template.Spec;
        V1Container flanneld = Assert.Single(pod.Containers);

        Assert.Equal(("kube-flannel-ds", "kube-flannel"), (daemonSet.Metadata.Name, daemonSet.Metadata.NamespaceProperty));
        Assert.Equal(["--ip-masq", "--kube-subnet-mgr", "--healthz-port=8081"], flanneld.Args);
        Assert.Equal(["/opt/bin/flanneld"], flanneld.Command);
        Assert.False(flanneld.SecurityContext.Privileged);
        Assert.Equal(["NET_ADMIN", "NET_RAW"], flanneld.SecurityContext.Capabilities.Add);
        Assert.Equal(("/healthz", "8081"), (flanneld.LivenessProbe.HttpGet.Path, flanneld.LivenessProbe.HttpGet.Port.Value));
        Assert.Equal(("/readyz", "8081"), (flanneld.ReadinessProbe.HttpGet.Path, flanneld.ReadinessProbe.HttpGet.Port.Value));
        Assert.Contains(flanneld.Env, e => e.Name == "POD_NAME" && e.ValueFrom.FieldRef.FieldPath == "metadata.name");
        Assert.Contains(flanneld.Env, e => e.Name == "POD_NAMESPACE" && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace");
        Assert.Equal(["/run/flannel", "/etc/kube-flannel/", "/run/xtables.lock"], flanneld.VolumeMounts.Select(m => m.MountPath));
        Assert.True(pod.HostNetwork);
        Assert.Equal("flannel", pod.ServiceAccountName);
        Assert.Equal("system-node-critical", pod.PriorityClassName);
        Assert.Equal(["install-cni-plugin", "install-cni"], pod.InitContainers.Select(c => c.Name));
    }
}
