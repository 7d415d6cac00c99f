namespace Flannel.Testing;

/// <summary>
/// Polls a condition until it holds: for tests of components that work on their own task (a backend's run loop, a
/// store's watch, a process in a namespace), where there is no event to await. A condition that never holds ends the
/// wait with a <see cref="TimeoutException"/> that names what was awaited, so the test fails instead of hanging.
/// </summary>
/// <remarks>
/// The deadline is measured on the real clock, never on a fake <see cref="TimeProvider"/> the test may be advancing
/// (<see cref="WaitOptions.BetweenPolls"/> is where a test advances its fake clock).
/// </remarks>
public static class Wait
{
    /// <summary>Polls <paramref name="condition"/> with the default <see cref="WaitOptions"/>.</summary>
    /// <param name="condition">Checked first at once, then after every poll interval.</param>
    /// <param name="what">What is awaited, for the timeout message (e.g. <c>"the route to 10.244.2.0/24"</c>).</param>
    /// <exception cref="TimeoutException">The condition did not hold before the timeout.</exception>
    public static Task UntilAsync(Func<bool> condition, string what) => UntilAsync(condition, what, WaitOptions.Default);

    /// <summary>Polls <paramref name="condition"/> until it holds or <see cref="WaitOptions.Timeout"/> passes.</summary>
    /// <exception cref="TimeoutException">The condition did not hold before the timeout.</exception>
    public static Task UntilAsync(Func<bool> condition, string what, WaitOptions options)
    {
        ArgumentNullException.ThrowIfNull(condition);
        return UntilAsync(() => Task.FromResult(condition()), what, options);
    }

    /// <summary>Polls an asynchronous <paramref name="condition"/> (a kernel dump, a file, a process) with the default <see cref="WaitOptions"/>.</summary>
    /// <exception cref="TimeoutException">The condition did not hold before the timeout.</exception>
    public static Task UntilAsync(Func<Task<bool>> condition, string what) => UntilAsync(condition, what, WaitOptions.Default);

    /// <summary>Polls an asynchronous <paramref name="condition"/> until it holds or <see cref="WaitOptions.Timeout"/> passes.</summary>
    /// <exception cref="TimeoutException">The condition did not hold before the timeout.</exception>
    public static async Task UntilAsync(Func<Task<bool>> condition, string what, WaitOptions options)
    {
        ArgumentNullException.ThrowIfNull(condition);
        ArgumentException.ThrowIfNullOrEmpty(what);
        ArgumentNullException.ThrowIfNull(options);
        DateTime deadline = DateTime.UtcNow + options.Timeout;
        while (!await condition().ConfigureAwait(false))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out after {options.Timeout.TotalSeconds:0.#} s waiting until {what}");
            }

            options.BetweenPolls?.Invoke();
            await Task.Delay(options.PollInterval).ConfigureAwait(false);
        }
    }
}

/// <summary>How <see cref="Wait"/> polls.</summary>
public sealed record WaitOptions
{
    /// <summary>20 s timeout, 10 ms between polls, nothing done between polls.</summary>
    public static WaitOptions Default { get; } = new();

    /// <summary>How long the condition may take to hold. Generous by default: a loaded CI machine is slow, and a passing test never waits it out.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>The pause between two checks.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Run after each failed check, e.g. to advance a fake clock so a timer-driven component makes progress.</summary>
    public Action? BetweenPolls { get; init; }
}
