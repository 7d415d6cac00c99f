using System.Text.Json.Nodes;

namespace Flannel.Store.Kube.Tests.Fixtures;

/// <summary>
/// Node and Pod objects in the shape <c>kubectl get node NAME -o json</c> prints for a kubeadm worker (metadata with
/// kubeadm/kubelet annotations and well-known labels, spec.podCIDR(s), status with addresses, capacity, the four
/// kubelet conditions, daemonEndpoints and nodeInfo). The template is one real worker's output with its identifiers
/// replaced; <see cref="Node"/> substitutes the name, address and pod CIDRs.
/// </summary>
public static class NodeFixtures
{
    public const string WorkerTemplate = """
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "annotations": {
                    "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock",
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true"
                },
                "creationTimestamp": "2026-11-20T09:14:27Z",
                "labels": {
                    "beta.kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "kubernetes.io/hostname": "NODE_NAME",
                    "kubernetes.io/os": "linux"
                },
                "name": "NODE_NAME",
                "resourceVersion": "1",
                "uid": "6f0e6c1a-3d5e-4a8f-9a51-NODE_UID"
            },
            "spec": {
                "podCIDR": "POD_CIDR",
                "podCIDRs": [
                    "POD_CIDR"
                ]
            },
            "status": {
                "addresses": [
                    {
                        "address": "NODE_IP",
                        "type": "InternalIP"
                    },
                    {
                        "address": "NODE_NAME",
                        "type": "Hostname"
                    }
                ],
                "allocatable": {
                    "cpu": "2",
                    "ephemeral-storage": "47093746742",
                    "hugepages-1Gi": "0",
                    "hugepages-2Mi": "0",
                    "memory": "3927424Ki",
                    "pods": "110"
                },
                "capacity": {
                    "cpu": "2",
                    "ephemeral-storage": "51099000Ki",
                    "hugepages-1Gi": "0",
                    "hugepages-2Mi": "0",
                    "memory": "4029824Ki",
                    "pods": "110"
                },
                "conditions": [
                    {
                        "lastHeartbeatTime": "2026-11-27T08:10:02Z",
                        "lastTransitionTime": "2026-11-20T09:14:27Z",
                        "message": "kubelet has sufficient memory available",
                        "reason": "KubeletHasSufficientMemory",
                        "status": "False",
                        "type": "MemoryPressure"
                    },
                    {
                        "lastHeartbeatTime": "2026-11-27T08:10:02Z",
                        "lastTransitionTime": "2026-11-20T09:14:27Z",
                        "message": "kubelet has no disk pressure",
                        "reason": "KubeletHasNoDiskPressure",
                        "status": "False",
                        "type": "DiskPressure"
                    },
                    {
                        "lastHeartbeatTime": "2026-11-27T08:10:02Z",
                        "lastTransitionTime": "2026-11-20T09:14:27Z",
                        "message": "kubelet has sufficient PID available",
                        "reason": "KubeletHasSufficientPID",
                        "status": "False",
                        "type": "PIDPressure"
                    },
                    {
                        "lastHeartbeatTime": "2026-11-27T08:10:02Z",
                        "lastTransitionTime": "2026-11-20T09:15:01Z",
                        "message": "kubelet is posting ready status",
                        "reason": "KubeletReady",
                        "status": "True",
                        "type": "Ready"
                    }
                ],
                "daemonEndpoints": {
                    "kubeletEndpoint": {
                        "Port": 10250
                    }
                },
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": "0f3c9a8e-5a4b-4d0f-8f36-2b9c4f1e7d21",
                    "containerRuntimeVersion": "containerd://1.7.24",
                    "kernelVersion": "6.1.0-27-amd64",
                    "kubeProxyVersion": "v1.31.4",
                    "kubeletVersion": "v1.31.4",
                    "machineID": "8a1d3c0b9e7f4a62b5c4d3e2f1a09876",
                    "operatingSystem": "linux",
                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "systemUUID": "4c4c4544-0031-3910-8052-b7c04f4e3132"
                }
            }
        }
        """;

    /// <summary>A worker node; <paramref name="podCidrs"/> empty means none assigned yet (no podCIDR fields at all).</summary>
    public static string Node(string name, string nodeIP, IReadOnlyList<string> podCidrs, IReadOnlyDictionary<string, string>? annotations = null)
    {
        JsonObject node = JsonNode.Parse(WorkerTemplate
            .Replace("NODE_NAME", name, StringComparison.Ordinal)
            .Replace("NODE_IP", nodeIP, StringComparison.Ordinal)
            .Replace("NODE_UID", (name.GetHashCode(StringComparison.Ordinal) & 0xFFFFFFF).ToString("x12"), StringComparison.Ordinal))!.AsObject();
        JsonObject spec = node["spec"]!.AsObject();
        if (podCidrs.Count == 0)
        {
            spec.Remove("podCIDR");
            spec.Remove("podCIDRs");
        }
        else
        {
            spec["podCIDR"] = podCidrs[0];
            spec["podCIDRs"] = new JsonArray([.. podCidrs.Select(c => (JsonNode)c)]);
        }

        if (annotations is not null)
        {
            JsonObject existing = node["metadata"]!["annotations"]!.AsObject();
            foreach ((string key, string value) in annotations)
            {
                existing[key] = value;
            }
        }

        return node.ToJsonString();
    }

    public static string Node(string name, string nodeIP, string podCidr, IReadOnlyDictionary<string, string>? annotations = null) =>
        Node(name, nodeIP, [podCidr], annotations);

    /// <summary>Annotations a Go flanneld (vxlan, IPv4) leaves on its node.</summary>
    public static Dictionary<string, string> FlannelVxlanAnnotations(string publicIP, string vtepMac) => new(StringComparer.Ordinal)
    {
        ["flannel.alpha.coreos.com/backend-data"] = $"{{\"VNI\":1,\"VtepMAC\":\"{vtepMac}\"}}",
        ["flannel.alpha.coreos.com/backend-type"] = "vxlan",
        ["flannel.alpha.coreos.com/kube-subnet-manager"] = "true",
        ["flannel.alpha.coreos.com/public-ip"] = publicIP,
    };

    /// <summary>A kube-flannel DaemonSet pod as <c>kubectl get pod -o json</c> shows it (abridged status).</summary>
    public static string FlannelPod(string name, string ns, string? nodeName) => $$"""
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "creationTimestamp": "2026-11-27T08:00:00Z",
                "generateName": "kube-flannel-ds-",
                "labels": {
                    "app": "flannel",
                    "controller-revision-hash": "6b5b8d8f9c",
                    "pod-template-generation": "1",
                    "tier": "node"
                },
                "name": "{{name}}",
                "namespace": "{{ns}}",
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "blockOwnerDeletion": true,
                        "controller": true,
                        "kind": "DaemonSet",
                        "name": "kube-flannel-ds",
                        "uid": "3b0f9c55-2f3e-4b86-9f2e-7d6c0a1b2c3d"
                    }
                ],
                "uid": "0c7a6e3e-9a3b-4f5d-8a6c-1e2f3a4b5c6d"
            },
            "spec": {
                "containers": [
                    {
                        "args": ["--ip-masq", "--kube-subnet-mgr"],
                        "command": ["/opt/bin/flanneld"],
                        "image": "ghcr.io/flannel-io/flannel:v0.28.9",
                        "name": "kube-flannel"
                    }
                ],
                "hostNetwork": true,
                {{(nodeName is null ? "" : $"\"nodeName\": \"{nodeName}\",")}}
                "serviceAccountName": "flannel"
            },
            "status": {
                "phase": "Running"
            }
        }
        """;
}
