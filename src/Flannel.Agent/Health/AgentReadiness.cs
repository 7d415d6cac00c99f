namespace Flannel.Agent.Health;

/// <summary>
/// One agent's readiness: not ready until its subnet.env is written, and not ready again while its lease watch is
/// down or its store reports a problem. Thread-safe; read by the health endpoint.
/// </summary>
public sealed class AgentReadiness
{
    private readonly Lock _gate = new();
    private string _phase = "starting";
    private bool _started;
    private string? _watchProblem;
    private Func<string?>? _storeProblem;

    /// <summary>Creates the readiness of the agent named <paramref name="agentName"/>.</summary>
    public AgentReadiness(string agentName)
    {
        ArgumentException.ThrowIfNullOrEmpty(agentName);
        AgentName = agentName;
    }

    /// <summary>The agent's name.</summary>
    public string AgentName { get; }

    /// <summary>True once subnet.env was written and while nothing reports a problem.</summary>
    public bool IsReady => NotReadyReason is null;

    /// <summary>Why the agent is not ready, or null when it is.</summary>
    public string? NotReadyReason
    {
        get
        {
            Func<string?>? store;
            string? phase = null;
            lock (_gate)
            {
                if (!_started)
                {
                    phase = _phase;
                }
                else if (_watchProblem is not null)
                {
                    return _watchProblem;
                }

                store = _storeProblem;
            }

            // During startup the store's own reason says why a step waits (e.g. acquiring a lease while the node has no podCIDR).
            string? storeProblem = store?.Invoke();
            return phase is null ? storeProblem : storeProblem is null ? phase : $"{phase}: {storeProblem}";
        }
    }

    /// <summary>Records the startup step the agent is in (it is not ready until <see cref="MarkStarted"/>).</summary>
    public void SetPhase(string phase)
    {
        ArgumentException.ThrowIfNullOrEmpty(phase);
        lock (_gate)
        {
            _phase = phase;
        }
    }

    /// <summary>Marks subnet.env written: the agent is ready unless a problem is reported.</summary>
    public void MarkStarted()
    {
        lock (_gate)
        {
            _started = true;
            _phase = "running";
        }
    }

    /// <summary>Marks the agent stopped (not ready).</summary>
    public void MarkStopped(string reason)
    {
        lock (_gate)
        {
            _started = false;
            _phase = reason;
        }
    }

    /// <summary>Sets (or clears with null) the lease watch problem.</summary>
    public void SetWatchProblem(string? problem)
    {
        lock (_gate)
        {
            _watchProblem = problem;
        }
    }

    /// <summary>Sets the source of store-reported problems (see <see cref="Subnets.ISubnetStoreStatus"/>).</summary>
    public void SetStoreStatus(Func<string?>? storeProblem)
    {
        lock (_gate)
        {
            _storeProblem = storeProblem;
        }
    }
}
