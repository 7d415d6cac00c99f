// The flannel CNI plugin (a meta-plugin, as flannel-io/cni-plugin): it reads flanneld's subnet.env, builds the
// bridge/host-local delegate netconf, saves it for DEL, and runs the delegate from CNI_PATH.
using System.Collections;
using System.Text;
using Flannel.Cni;

var environment = new Dictionary<string, string>(StringComparer.Ordinal);
foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
{
    environment[(string)entry.Key] = (string?)entry.Value ?? "";
}

byte[] stdin;
if (environment.GetValueOrDefault("CNI_COMMAND") is "VERSION" or null or "")
{
    stdin = [];
}
else
{
    using Stream input = Console.OpenStandardInput();
    using var buffer = new MemoryStream();
    input.CopyTo(buffer);
    stdin = buffer.ToArray();
}

var utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false);
using var stdout = new StreamWriter(Console.OpenStandardOutput(), utf8) { AutoFlush = false };
using var stderr = new StreamWriter(Console.OpenStandardError(), utf8) { AutoFlush = true };
int exitCode = new CniPlugin(environment, new ProcessPluginRunner(), stdout, stderr).Run(stdin);
stdout.Flush();
return exitCode;
