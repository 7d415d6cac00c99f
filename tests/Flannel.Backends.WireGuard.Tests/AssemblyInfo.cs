// The plugin under test is Linux-only (network namespaces, file modes).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
