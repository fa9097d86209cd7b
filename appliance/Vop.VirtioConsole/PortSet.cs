namespace Vop.VirtioConsole;

/// <summary>
/// The endpoints of one console device at this end, by port name, created on first use and kept for the
/// daemon's life (so host sockets keep their paths across card reboots).
/// </summary>
public sealed class PortSet : IDisposable
{
    private readonly Func<string, PortEndpoint> _factory;
    private readonly Dictionary<string, PortEndpoint> _ports = [];
    private readonly object _gate = new();

    public PortSet(Func<string, PortEndpoint> factory)
    {
        _factory = factory;
    }

    /// <summary>Rung when any endpoint has data or changed state.</summary>
    public Action? Changed { get; set; }

    public PortEndpoint Get(string name)
    {
        lock (_gate)
        {
            if (!_ports.TryGetValue(name, out PortEndpoint? p))
            {
                p = _factory(name);
                p.Changed = () => Changed?.Invoke();
                _ports[name] = p;
            }

            return p;
        }
    }

    public IReadOnlyList<PortEndpoint> All
    {
        get
        {
            lock (_gate)
            {
                return [.. _ports.Values];
            }
        }
    }

    public void Dispose()
    {
        foreach (PortEndpoint p in All)
        {
            p.Dispose();
        }
    }
}
