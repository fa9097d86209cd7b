using System.CommandLine;
using Tmds.Linux;
using Vop.Links.Interop;

namespace Vop.HostilePeer.Verbs;

/// <summary>
/// truncate-shm: joins an ivshmem-protocol server, takes the shared memory fd it hands out and resizes it.
/// A memfd without F_SEAL_SHRINK/GROW lets any client pull the window from under every mapping (SIGBUS
/// on the next touch); a sealed one refuses with EPERM.
/// </summary>
internal static class TruncateShm
{
    public static Command Create()
    {
        var socket = new Option<string>("--socket") { Description = "ivshmem-protocol socket of the device side", Required = true };
        var size = new Option<string>("--size") { Description = "new size of the shared memory (bytes, K/M/G suffix)", Required = true };
        var command = new Command("truncate-shm", "take the server's shm fd and ftruncate it") { socket, size };
        command.SetAction(p => Run(p.GetValue(socket)!, p.GetValue(size)!));
        return command;
    }

    private static int Run(string path, string sizeText)
    {
        ulong size;
        try
        {
            size = Report.ParseSize(sizeText);
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            return Report.Fail("truncate-shm", $"--size: {e.Message}");
        }

        IvshmemSession? session;
        try
        {
            session = IvshmemSession.Connect(path);
        }
        catch (Exception e) when (e is IOException or ArgumentException)
        {
            return Report.Fail("truncate-shm", e.Message);
        }

        if (session is null)
        {
            return Report.Fail("truncate-shm", $"nobody listens at {path}");
        }

        using (session)
        {
            session.ReadGreeting(quietMs: 1000, capMs: 3000, untilShm: true);
            if (session.Shm is null)
            {
                Report.Line("admitted", 0);
                Report.Line("closed_by_server", session.ClosedByServer ? 1 : 0);
                return Report.Fail("truncate-shm", $"the server at {path} sent no shm fd", Report.TurnedAway);
            }

            int fd = session.Shm.Fd;
            Report.Line("admitted", 1);
            Report.Line("shm_size_before", Report.FdSize(fd));
            Report.Line("seals", Report.Seals(fd));
            int r = LibC.ftruncate(fd, (off_t)(long)size);
            Report.Line("truncate", Report.Outcome(r, Errno.Last));
            Report.Line("shm_size_after", Report.FdSize(fd));
        }

        return 0;
    }
}
