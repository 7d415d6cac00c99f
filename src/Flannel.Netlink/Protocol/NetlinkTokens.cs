namespace Flannel.Netlink.Protocol;

/// <summary>
/// Returned by <see cref="NetlinkWriter.BeginMessage"/>: where the open message's <c>nlmsg_len</c> lives, so
/// <see cref="NetlinkWriter.EndMessage"/> can back-fill it. Opaque to callers.
/// </summary>
internal readonly struct NetlinkMessageToken
{
    internal NetlinkMessageToken(int offset, uint sequence)
    {
        Offset = offset;
        Sequence = sequence;
    }

    /// <summary>Absolute offset of the message header in the writer's output.</summary>
    internal int Offset { get; }

    /// <summary>The message's sequence number, handy for matching its acknowledgement.</summary>
    public uint Sequence { get; }
}

/// <summary>
/// Returned by <see cref="NetlinkWriter.BeginNested"/>: where the nested attribute's <c>nla_len</c> lives and
/// at which depth it was opened, so a crossed or unbalanced end is detected.
/// </summary>
internal readonly struct NetlinkNestToken
{
    internal NetlinkNestToken(int offset, int depth)
    {
        Offset = offset;
        Depth = depth;
    }

    /// <summary>Absolute offset of the attribute header in the writer's output.</summary>
    internal int Offset { get; }

    /// <summary>Nesting depth at which the attribute was opened (1 = directly in the message).</summary>
    internal int Depth { get; }
}
