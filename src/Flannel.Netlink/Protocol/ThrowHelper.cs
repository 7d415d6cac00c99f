using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Flannel.Netlink.Protocol;

/// <summary>
/// Every throw of the protocol layer, kept out of the hot methods so they stay small enough to inline.
/// </summary>
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void ThrowMalformed(string what) => throw new NetlinkProtocolException(what);

    [DoesNotReturn]
    public static void ThrowMessageLength(uint length, int remaining) =>
        throw new NetlinkProtocolException(string.Create(CultureInfo.InvariantCulture, $"nlmsg_len {length} is shorter than the 16-byte header or longer than the {remaining} bytes left"));

    [DoesNotReturn]
    public static void ThrowAttributeLength(ushort length, int remaining) =>
        throw new NetlinkProtocolException(string.Create(CultureInfo.InvariantCulture, $"nla_len {length} is shorter than the 4-byte header or longer than the {remaining} bytes left"));

    [DoesNotReturn]
    public static void ThrowAttributeSize(ushort type, int actual, int expected) =>
        throw new NetlinkProtocolException(string.Create(CultureInfo.InvariantCulture, $"attribute {type} has {actual} payload bytes, expected {expected}"));

    [DoesNotReturn]
    public static void ThrowHeaderTooShort(string header, int actual, int expected) =>
        throw new NetlinkProtocolException(string.Create(CultureInfo.InvariantCulture, $"{header} needs {expected} bytes but the message payload has {actual}"));

    [DoesNotReturn]
    public static void ThrowBufferTooSmall(int needed, int available) =>
        throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"The netlink buffer is too small: {needed} more bytes needed, {available} left. Use a larger span or the IBufferWriter<byte> constructor."));

    [DoesNotReturn]
    public static void ThrowInvalidOperation(string message) => throw new InvalidOperationException(message);

    [DoesNotReturn]
    public static T ThrowMalformed<T>(string what) => throw new NetlinkProtocolException(what);
}
