using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Vop.Links;
using Vop.Netstack.Capture;

namespace Vop.Appliance.Hosting;

/// <summary>
/// `vop capture` for one link, reached through the daemon's control socket (<see cref="ControlServer"/>):
/// while a client is attached the link's net devices mirror their frames into their capture rings, and a
/// thread drains the rings and streams their records as they are (see <see cref="CaptureRing"/>). One client
/// at a time: the rings have one reader.
/// </summary>
public sealed class CaptureStreamer : IDisposable
{
    private readonly IReadOnlyList<CaptureRing> _rings;
    private readonly ILogger _log;
    private readonly object _gate = new();
    private Thread? _thread;
    private volatile bool _disposed;

    public CaptureStreamer(IReadOnlyList<CaptureRing> rings, ILogger log)
    {
        _rings = rings;
        _log = log;
        for (int i = 0; i < rings.Count; i++)
        {
            rings[i].DeviceIndex = (byte)i;
        }
    }

    /// <summary>Whether a client is attached.</summary>
    public bool Busy
    {
        get
        {
            lock (_gate)
            {
                return _thread is { IsAlive: true };
            }
        }
    }

    /// <summary>Streams to <paramref name="client"/> on a thread of its own, which then owns and closes it; false while another client is attached.</summary>
    public bool TryAttach(Socket client)
    {
        lock (_gate)
        {
            if (_disposed || _thread is { IsAlive: true })
            {
                return false;
            }

            _thread = Faults.StartGuarded("vop-capture", () => Stream(client));
            return true;
        }
    }

    private void Stream(Socket client)
    {
        var buffer = new byte[1 << 20];
        using (client)
        {
            foreach (CaptureRing r in _rings)
            {
                r.Start();
            }

            try
            {
                while (!_disposed)
                {
                    bool any = false;
                    for (int i = 0; i < _rings.Count; i++)
                    {
                        int n = _rings[i].Drain(buffer);
                        if (n > 0)
                        {
                            client.Send(buffer, 0, n, SocketFlags.None);
                            any = true;
                        }
                    }

                    // A closed client shows as readable with nothing to read.
                    if (client.Poll(any ? 0 : 20_000, SelectMode.SelectRead) && client.Available == 0)
                    {
                        break;
                    }
                }
            }
            catch (SocketException e)
            {
                _log.LogDebug("capture client left: {Error}", e.Message);
            }
            finally
            {
                foreach (CaptureRing r in _rings)
                {
                    r.Stop();
                }
            }
        }
    }

    public void Dispose()
    {
        Thread? thread;
        lock (_gate)
        {
            _disposed = true;
            thread = _thread;
        }

        thread?.Join(2000);
    }
}
