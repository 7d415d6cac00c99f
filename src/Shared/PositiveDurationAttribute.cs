// Shared source: compiled into each package whose options hold durations, so their source-generated
// [OptionsValidator] validators check them the same way. Internal in each; keep it dependency-free.
using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace Flannel;

/// <summary>
/// Marks a <see cref="TimeSpan"/> option that must be greater than zero. The options validation source generator
/// calls it without reflection, unlike <c>[Range(typeof(TimeSpan), …)]</c>, whose bounds are converted through
/// reflection (IL2026 under native AOT); and its message names the option and the value, which a DataAnnotations
/// message template cannot.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class PositiveDurationAttribute : ValidationAttribute
{
    protected override ValidationResult? IsValid(object? value, ValidationContext validationContext) =>
        value is TimeSpan duration && duration > TimeSpan.Zero
            ? ValidationResult.Success
            : new ValidationResult(
                // The generated validator prefixes the member name ("ResyncInterval: ..."); the type tells which package.
                string.Create(CultureInfo.InvariantCulture, $"'{value}' is not a positive duration ({validationContext.ObjectType.Name})."),
                validationContext.MemberName is { } member ? [member] : null);
}
