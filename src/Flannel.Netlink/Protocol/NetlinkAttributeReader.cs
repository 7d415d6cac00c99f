using System.Buffers.Binary;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using Flannel.Netlink.Interop;

namespace Flannel.Netlink.Protocol;

/// <summary>One attribute: its type (flag bits removed), whether NLA_F_NESTED was set, and its payload.</summary>
internal readonly ref struct NetlinkAttribute
{
    public NetlinkAttribute(ushort rawType, ReadOnlySpan<byte> payload)
    {
        Type = (ushort)(rawType & NetlinkHeader.NLA_TYPE_MASK);
        IsNestedFlagSet = (rawType & NetlinkHeader.NLA_F_NESTED) != 0;
        Payload = payload;
    }

    /// <summary>The attribute type without NLA_F_NESTED / NLA_F_NET_BYTEORDER.</summary>
    public ushort Type { get; }

    /// <summary>NLA_F_NESTED was set (the kernel sets it on some nests, never relied upon).</summary>
    public bool IsNestedFlagSet { get; }

    /// <summary>The payload, without padding.</summary>
    public ReadOnlySpan<byte> Payload { get; }

    /// <summary>The payload as attributes.</summary>
    public NetlinkAttributeReader Nested => new(Payload);

    public byte GetUInt8()
    {
        Require(1);
        return Payload[0];
    }

    public ushort GetUInt16()
    {
        Require(2);
        return MemoryMarshal.Read<ushort>(Payload);
    }

    public ushort GetUInt16BigEndian()
    {
        Require(2);
        return BinaryPrimitives.ReadUInt16BigEndian(Payload);
    }

    public uint GetUInt32()
    {
        Require(4);
        return MemoryMarshal.Read<uint>(Payload);
    }

    public ulong GetUInt64()
    {
        Require(8);
        return MemoryMarshal.Read<ulong>(Payload);
    }

    public int GetInt32()
    {
        Require(4);
        return MemoryMarshal.Read<int>(Payload);
    }

    /// <summary>A NUL-terminated (or unterminated) UTF-8 string.</summary>
    public string GetString()
    {
        ReadOnlySpan<byte> s = Payload;
        int nul = s.IndexOf((byte)0);
        if (nul >= 0)
        {
            s = s[..nul];
        }

        try
        {
            return Encoding.UTF8.GetString(s);
        }
        catch (DecoderFallbackException e)
        {
            throw new NetlinkProtocolException($"attribute {Type} is not a valid string", e);
        }
    }

    /// <summary>A 4-byte IPv4 or 16-byte IPv6 address.</summary>
    public IPAddress GetAddress()
    {
        if (Payload.Length is not (4 or 16))
        {
            ThrowHelper.ThrowAttributeSize(Type, Payload.Length, 4);
        }

        return new IPAddress(Payload);
    }

    /// <summary>A 6-byte hardware address, or null for any other length (e.g. loopback's or an IP tunnel's).</summary>
    public MacAddress? GetMacOrNull() => Payload.Length == 6 ? new MacAddress(Payload) : null;

    private void Require(int size)
    {
        if (Payload.Length < size)
        {
            ThrowHelper.ThrowAttributeSize(Type, Payload.Length, size);
        }
    }
}

/// <summary>
/// Walks a run of attributes. Each <c>nla_len</c> is validated once against the bytes left; one that is below
/// the 4-byte header or runs past its container throws <see cref="NetlinkProtocolException"/>. Fewer than 4
/// trailing bytes end the run, as the kernel's <c>nla_ok</c> does.
/// </summary>
internal ref struct NetlinkAttributeReader
{
    private ReadOnlySpan<byte> _remaining;

    public NetlinkAttributeReader(ReadOnlySpan<byte> attributes) => _remaining = attributes;

    public bool TryRead(out NetlinkAttribute attribute)
    {
        if (_remaining.Length < NetlinkHeader.NLA_HDRLEN)
        {
            attribute = default;
            return false;
        }

        ushort length = MemoryMarshal.Read<ushort>(_remaining);
        if (length < NetlinkHeader.NLA_HDRLEN || length > _remaining.Length)
        {
            ThrowHelper.ThrowAttributeLength(length, _remaining.Length);
        }

        attribute = new NetlinkAttribute(MemoryMarshal.Read<ushort>(_remaining[2..]), _remaining[NetlinkHeader.NLA_HDRLEN..length]);
        _remaining = _remaining[Math.Min(NetlinkAlignment.AttributeAlign(length), _remaining.Length)..];
        return true;
    }
}
