// The flannel CNI plugin manages Linux network namespaces, bridges and file modes; it runs on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
