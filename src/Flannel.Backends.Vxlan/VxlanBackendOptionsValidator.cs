using Microsoft.Extensions.Options;

namespace Flannel.Backends.Vxlan;

/// <summary>
/// Checks <see cref="VxlanBackendOptions"/> when the host starts, from the attributes on its properties; each failure
/// names the option and its value. Source-generated, so trimming and native AOT keep it.
/// </summary>
[OptionsValidator]
internal sealed partial class VxlanBackendOptionsValidator : IValidateOptions<VxlanBackendOptions>
{
}
