using System.Runtime.InteropServices;

#pragma warning disable CA1707, IDE1006, SA1307

namespace Flannel.Netlink.Interop;

/// <summary><c>struct sockaddr_nl</c> from include/uapi/linux/netlink.h (Tmds.LibC does not define it).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct sockaddr_nl
{
    public ushort nl_family;
    public ushort nl_pad;
    public uint nl_pid;
    public uint nl_groups;
}
