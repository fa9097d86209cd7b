using System.Net.Sockets;
using System.Text;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>`vop run` under systemd (Type=notify) reports READY=1 once its links are up, on NOTIFY_SOCKET.</summary>
[Collection(EndToEnd.Name)]
public sealed class SystemdNotifyTests
{
    [Fact]
    public void DaemonSendsReadyToTheNotifySocket()
    {
        using var pair = new LinkPair();
        string notify = Path.Combine(pair.Dir, "notify.sock");
        using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(notify));
        socket.ReceiveTimeout = 30_000;

        // The hosting package recognises a systemd service by its parent process being named systemd (and,
        // in newer versions, by SYSTEMD_EXEC_PID): run the daemon as the child of a shell called systemd.
        string manager = Path.Combine(pair.Dir, "systemd");
        File.Copy("/bin/sh", manager);
        File.SetUnixFileMode(manager, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        string command = $"NOTIFY_SOCKET='{notify}' {string.Join(' ', Run.Vop("run", "--config", pair.HostConfig))}; true";
        System.Diagnostics.Process daemon = Run.Background(pair.HostNs, Path.Combine(pair.Dir, "host.log"), manager, "-c", command);
        try
        {
            var buffer = new byte[4096];
            string received = string.Empty;
            long deadline = Environment.TickCount64 + 30_000;
            while (!received.Contains("READY=1", StringComparison.Ordinal) && Environment.TickCount64 < deadline)
            {
                int n = socket.Receive(buffer);
                received += Encoding.UTF8.GetString(buffer, 0, n) + "\n";
            }

            Assert.Contains("READY=1", received);
            Assert.True(pair.TapExists(pair.HostNs, pair.HostTap), "READY before the TAP existed");
        }
        finally
        {
            // End the daemon (our manager's child, found by its config path), then the manager.
            foreach (System.Diagnostics.Process p in System.Diagnostics.Process.GetProcessesByName(Run.VopProcessName))
            {
                if (File.Exists($"/proc/{p.Id}/cmdline") && File.ReadAllText($"/proc/{p.Id}/cmdline").Contains(pair.HostConfig, StringComparison.Ordinal))
                {
                    LinkPair.Kill(p, 15);
                }
            }

            LinkPair.Kill(daemon, 15);
            daemon.Dispose();
        }
    }
}
