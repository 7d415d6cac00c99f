// WireGuard devices, key files with Unix modes and wireguard-go exist on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
