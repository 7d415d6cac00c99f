// The commands run under /bin/sh, with Unix signals for timeouts: Linux only, like flannel's backend.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
