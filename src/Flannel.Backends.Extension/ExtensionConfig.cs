using System.Text.Json;
using Flannel.Configuration;

namespace Flannel.Backends.Extension;

/// <summary>
/// The extension <c>Backend</c> object of net-conf.json, decoded as flannel's Go <c>encoding/json</c> does: keys
/// match case-insensitively, unknown keys are ignored, a missing or null command means "none".
/// </summary>
/// <param name="PreStartupCommand">Runs before the lease is acquired; its output becomes the lease's BackendData.</param>
/// <param name="PostStartupCommand">Runs once the lease is known, with NETWORK, SUBNET and PUBLIC_IP set.</param>
/// <param name="SubnetAddCommand">Runs for each remote lease added or changed, with SUBNET and PUBLIC_IP set and its BackendData on stdin.</param>
/// <param name="SubnetRemoveCommand">Runs for each remote lease removed, likewise.</param>
internal sealed record ExtensionConfig(string? PreStartupCommand, string? PostStartupCommand, string? SubnetAddCommand, string? SubnetRemoveCommand)
{
    /// <summary>Decodes the raw <c>Backend</c> JSON.</summary>
    /// <exception cref="NetworkConfigException">A command is not a string (flannel: "error decoding backend config").</exception>
    public static ExtensionConfig Parse(string? backendJson)
    {
        var config = new ExtensionConfig(null, null, null, null);
        if (string.IsNullOrWhiteSpace(backendJson))
        {
            return config;
        }

        using JsonDocument document = Decode(backendJson);
        foreach (JsonProperty property in document.RootElement.EnumerateObject())
        {
            switch (property.Name.ToUpperInvariant())
            {
                case "PRESTARTUPCOMMAND":
                    config = config with { PreStartupCommand = ReadCommand(property, "PreStartupCommand") };
                    break;
                case "POSTSTARTUPCOMMAND":
                    config = config with { PostStartupCommand = ReadCommand(property, "PostStartupCommand") };
                    break;
                case "SUBNETADDCOMMAND":
                    config = config with { SubnetAddCommand = ReadCommand(property, "SubnetAddCommand") };
                    break;
                case "SUBNETREMOVECOMMAND":
                    config = config with { SubnetRemoveCommand = ReadCommand(property, "SubnetRemoveCommand") };
                    break;
                default:
                    break; // Type, and anything flannel ignores
            }
        }

        return config;
    }

    private static JsonDocument Decode(string backendJson)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(backendJson);
        }
        catch (JsonException ex)
        {
            throw new NetworkConfigException($"error decoding backend config: {ex.Message}", "Backend", backendJson, ex);
        }

        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            document.Dispose();
            throw new NetworkConfigException($"error decoding backend config: Backend must be a JSON object, got {backendJson}", "Backend", backendJson);
        }

        return document;
    }

    /// <summary>An empty command counts as none, as flannel tests <c>len(command) &gt; 0</c>.</summary>
    private static string? ReadCommand(JsonProperty property, string field) => property.Value.ValueKind switch
    {
        JsonValueKind.String => property.Value.GetString() is { Length: > 0 } command ? command : null,
        JsonValueKind.Null => null,
        _ => throw new NetworkConfigException(
            $"error decoding backend config: {field} must be a string (a shell command), got {property.Value.GetRawText()}",
            $"Backend.{field}",
            property.Value.GetRawText()),
    };
}
