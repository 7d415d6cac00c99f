using Microsoft.Extensions.Options;

namespace Flannel.Backends.Extension;

/// <summary>
/// Checks <see cref="ExtensionBackendOptions"/> when the host starts, from the attributes on its properties; each failure
/// names the option and its value. Source-generated, so trimming and native AOT keep it.
/// </summary>
[OptionsValidator]
internal sealed partial class ExtensionBackendOptionsValidator : IValidateOptions<ExtensionBackendOptions>
{
}
