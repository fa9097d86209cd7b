using System.CommandLine;
using Tmds.Linux;
using Vop.Links.Doorbells;
using Vop.Links.Interop;

namespace Vop.HostilePeer.Verbs;

/// <summary>
/// second-client: joins an ivshmem-protocol server as an extra client, --repeat times, and while holding
/// each connection reads every eventfd it was given. Reading an eventfd consumes its count, so a client
/// that got the device side's (peer 0's) vectors steals the driver's doorbells from the device.
/// </summary>
internal static class SecondClient
{
    public static Command Create()
    {
        var socket = new Option<string>("--socket") { Description = "ivshmem-protocol socket of the device side", Required = true };
        var holdMs = new Option<int>("--hold-ms") { Description = "how long to keep each connection", DefaultValueFactory = _ => 1000 };
        var repeat = new Option<int>("--repeat") { Description = "connections, one after the other", DefaultValueFactory = _ => 1 };
        var command = new Command("second-client", "join as an extra ivshmem client, take its fds and drain every doorbell it was given") { socket, holdMs, repeat };
        command.SetAction(p => Run(p.GetValue(socket)!, Math.Max(0, p.GetValue(holdMs)), Math.Max(1, p.GetValue(repeat))));
        return command;
    }

    private static int Run(string path, int holdMs, int repeat)
    {
        int admitted = 0, closed = 0, fds = 0, eventFds = 0, departures = 0;
        ulong doorbells = 0;
        long shmSize = -1;
        var ids = new List<long>();
        for (int i = 0; i < repeat; i++)
        {
            IvshmemSession? session;
            try
            {
                session = IvshmemSession.Connect(path);
            }
            catch (Exception e) when (e is IOException or ArgumentException)
            {
                return Report.Fail("second-client", e.Message);
            }

            if (session is null)
            {
                return Report.Fail("second-client", $"nobody listens at {path}");
            }

            using (session)
            {
                session.ReadGreeting(quietMs: 300, capMs: 3000);
                if (session.Admitted)
                {
                    admitted++;
                    ids.Add(session.Id!.Value);
                    shmSize = Report.FdSize(session.Shm!.Fd);
                }

                doorbells += Hold(session, holdMs);
                closed += session.ClosedByServer ? 1 : 0;
                fds += session.FdsReceived;
                eventFds += session.EventFds.Count;
                departures += session.Departures;
            }
        }

        Report.Line("attempts", repeat);
        Report.Line("admitted", admitted);
        Report.Line("refused", repeat - admitted);
        Report.Line("closed_by_server", closed);
        Report.Line("peer_ids", ids.Count == 0 ? "none" : string.Join(',', ids));
        Report.Line("fds_received", fds);
        Report.Line("eventfds", eventFds);
        Report.Line("shm_size", shmSize);
        Report.Line("departures_seen", departures);
        Report.Line("doorbells_seen", doorbells);
        return 0;
    }

    /// <summary>
    /// Keeps the connection for <paramref name="holdMs"/>, following the server's messages (late vectors,
    /// departures) and draining every eventfd we hold; returns the doorbell count read from them.
    /// </summary>
    private static unsafe ulong Hold(IvshmemSession session, int holdMs)
    {
        ulong seen = 0;
        long deadline = Environment.TickCount64 + holdMs;
        while (true)
        {
            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                return seen;
            }

            int socketSlot = session.ClosedByServer ? -1 : session.EventFds.Count;
            var pfds = new pollfd[session.EventFds.Count + (socketSlot >= 0 ? 1 : 0)];
            for (int i = 0; i < session.EventFds.Count; i++)
            {
                pfds[i] = new pollfd { fd = session.EventFds[i].Vector.Fd, events = LibC.POLLIN };
            }

            if (socketSlot >= 0)
            {
                pfds[socketSlot] = new pollfd { fd = session.Socket.Fd, events = LibC.POLLIN };
            }

            if (pfds.Length == 0)
            {
                Thread.Sleep((int)left);
                return seen;
            }

            int r;
            fixed (pollfd* pp = pfds)
            {
                r = LibC.poll(pp, (ulong_t)(ulong)pfds.Length, (int)Math.Min(left, 100));
            }

            if (r < 0 && Errno.Last != LibC.EINTR)
            {
                Errno.Throw("poll");
            }

            for (int i = 0; r > 0 && i < session.EventFds.Count; i++)
            {
                if ((pfds[i].revents & LibC.POLLIN) != 0)
                {
                    EventFdDoorbell v = session.EventFds[i].Vector;
                    seen += v.Drain();
                }
            }

            if (r > 0 && socketSlot >= 0 && pfds[socketSlot].revents != 0)
            {
                session.ReadOne();
            }
        }
    }
}
