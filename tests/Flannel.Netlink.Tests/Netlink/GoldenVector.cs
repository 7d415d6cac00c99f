using System.Globalization;

namespace Flannel.Netlink.Tests;

/// <summary>A request captured from iproute2 (see TestData/README.md): the command and the bytes it sent.</summary>
internal sealed record GoldenVector(string Name, string Command, string MessageType, byte[] Bytes)
{
    public static GoldenVector Load(string name)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Netlink", "TestData", name + ".hex");
        string command = string.Empty, type = string.Empty;
        var bytes = new List<byte>();
        foreach (string line in File.ReadAllLines(path))
        {
            if (line.StartsWith("# command: ", StringComparison.Ordinal))
            {
                command = line["# command: ".Length..];
            }
            else if (line.StartsWith("# type: ", StringComparison.Ordinal))
            {
                type = line["# type: ".Length..];
            }
            else if (!line.StartsWith('#'))
            {
                foreach (string hex in line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    bytes.Add(byte.Parse(hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                }
            }
        }

        Assert.True(bytes.Count >= 16, $"{path} holds no captured message");
        return new GoldenVector(name, command, type, [.. bytes]);
    }

    /// <summary>The captured bytes with nlmsg_seq and nlmsg_pid replaced by ours, the only fields that may differ.</summary>
    public byte[] WithSequence(uint sequence)
    {
        byte[] copy = (byte[])Bytes.Clone();
        BitConverter.TryWriteBytes(copy.AsSpan(8), sequence);
        BitConverter.TryWriteBytes(copy.AsSpan(12), 0u);
        return copy;
    }

    public static string Hex(ReadOnlySpan<byte> bytes)
    {
        var text = new System.Text.StringBuilder();
        for (int i = 0; i < bytes.Length; i++)
        {
            text.Append(bytes[i].ToString("x2", CultureInfo.InvariantCulture)).Append(i % 16 == 15 ? '\n' : ' ');
        }

        return text.ToString();
    }
}
