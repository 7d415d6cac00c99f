using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Flannel.Testing.FakeNetlink;

/// <summary>
/// An <see cref="IMeterFactory"/> whose meters are private to one test, plus a listener that sums every
/// long measurement by instrument name and tags, so parallel tests never see each other's numbers.
/// </summary>
public sealed class MeterCapture : IMeterFactory
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _sums = new(StringComparer.Ordinal);
    private readonly List<Meter> _meters = [];

    /// <summary>Starts listening to meters this factory creates.</summary>
    public MeterCapture()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, this))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            _sums.AddOrUpdate(instrument.Name, value, (_, sum) => sum + value);
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                string key = $"{instrument.Name}|{tag.Key}={tag.Value}";
                _sums.AddOrUpdate(key, value, (_, sum) => sum + value);
            }
        });
        _listener.Start();
    }

    /// <inheritdoc />
    public Meter Create(MeterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var meter = new Meter(options.Name, options.Version, options.Tags, scope: this);
        lock (_meters)
        {
            _meters.Add(meter);
        }

        return meter;
    }

    /// <summary>Sum of an instrument's measurements, optionally only those carrying tag <paramref name="tag"/>=<paramref name="value"/>.</summary>
    public long Sum(string instrument, string? tag = null, string? value = null) =>
        _sums.TryGetValue(tag is null ? instrument : $"{instrument}|{tag}={value}", out long sum) ? sum : 0;

    /// <inheritdoc />
    public void Dispose()
    {
        _listener.Dispose();
        lock (_meters)
        {
            foreach (Meter meter in _meters)
            {
                meter.Dispose();
            }
        }
    }
}
