namespace Flannel.Agent.Health;

/// <summary>
/// The process-wide health: the readiness of every agent in the process. The process is ready when it runs at
/// least one agent and all of them are ready. Registered once per service provider; named agents share it.
/// </summary>
public sealed class FlannelHealth
{
    private readonly Lock _gate = new();
    private readonly List<AgentReadiness> _agents = [];
    private readonly List<(string Agent, Exception Error)> _failures = [];

    /// <summary>The agents' readiness objects.</summary>
    public IReadOnlyList<AgentReadiness> Agents
    {
        get
        {
            lock (_gate)
            {
                return [.. _agents];
            }
        }
    }

    /// <summary>Agents that stopped because of a fatal error (flanneld would exit 1).</summary>
    public IReadOnlyList<(string Agent, Exception Error)> Failures
    {
        get
        {
            lock (_gate)
            {
                return [.. _failures];
            }
        }
    }

    /// <summary>True when there is at least one agent and every agent is ready.</summary>
    public bool IsReady => NotReadyReason is null;

    /// <summary>The first agent's reason for not being ready, prefixed by its name; null when ready.</summary>
    public string? NotReadyReason
    {
        get
        {
            IReadOnlyList<AgentReadiness> agents = Agents;
            if (agents.Count == 0)
            {
                return "no agent registered";
            }

            foreach (AgentReadiness agent in agents)
            {
                if (agent.NotReadyReason is string reason)
                {
                    return agents.Count == 1 ? reason : $"{agent.AgentName}: {reason}";
                }
            }

            return null;
        }
    }

    /// <summary>Adds an agent's readiness.</summary>
    public AgentReadiness Register(string agentName)
    {
        var readiness = new AgentReadiness(agentName);
        lock (_gate)
        {
            _agents.Add(readiness);
        }

        return readiness;
    }

    /// <summary>Records that an agent stopped on a fatal error.</summary>
    public void ReportFailure(string agentName, Exception error)
    {
        lock (_gate)
        {
            _failures.Add((agentName, error));
        }
    }
}
