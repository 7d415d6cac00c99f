using Microsoft.Extensions.Options;

namespace Flannel.Backends.HostGw;

/// <summary>
/// Checks <see cref="HostGwBackendOptions"/> when the host starts, from the attributes on its properties; each failure
/// names the option and its value. Source-generated, so trimming and native AOT keep it.
/// </summary>
[OptionsValidator]
internal sealed partial class HostGwBackendOptionsValidator : IValidateOptions<HostGwBackendOptions>
{
}
