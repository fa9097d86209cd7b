using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Vop.Links;
using Vop.Links.Interop;
using Vop.Netstack.Capture;

namespace Vop.Appliance.Hosting;

/// <summary>
/// Serves `vop capture` for one link: a UNIX socket at RunDir/LINK/capture.sock (0600). While a client is
/// connected the link's net devices mirror their frames into their capture rings; this thread drains the
/// rings and streams their records as they are (see <see cref="CaptureRing"/>).
/// </summary>
public sealed class CaptureServer : IDisposable
{
    private readonly Socket _listener;
    private readonly string _path;
    private readonly IReadOnlyList<CaptureRing> _rings;
    private readonly ILogger _log;
    private readonly Thread _thread;
    private volatile bool _disposed;

    public CaptureServer(string path, IReadOnlyList<CaptureRing> rings, ILogger log)
    {
        _path = path;
        _rings = rings;
        _log = log;
        for (int i = 0; i < rings.Count; i++)
        {
            rings[i].DeviceIndex = (byte)i;
        }

        _listener = PrivateSocket.Listen(path, 4);
        _thread = Faults.StartGuarded("vop-capture", Serve);
    }

    private void Serve()
    {
        var buffer = new byte[1 << 20];
        while (!_disposed)
        {
            Socket client;
            try
            {
                client = _listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                continue;
            }

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
    }

    public void Dispose()
    {
        _disposed = true;
        _listener.Dispose();
        _thread.Join(2000);
        try
        {
            File.Delete(_path);
        }
        catch (IOException)
        {
        }
    }
}
