// The code under test is Linux-only (network namespaces, netlink, file modes).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
