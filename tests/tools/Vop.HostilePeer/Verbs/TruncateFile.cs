using System.CommandLine;
using System.Text;
using Tmds.Linux;
using Vop.Links.Interop;

namespace Vop.HostilePeer.Verbs;

/// <summary>truncate-file: truncate(2) a window file that both ends map (a pci/ntb window on /dev/shm).</summary>
internal static unsafe class TruncateFile
{
    public static Command Create()
    {
        var file = new Option<string>("--file") { Description = "window file", Required = true };
        var size = new Option<string>("--size") { Description = "new size (bytes, K/M/G suffix)", Required = true };
        var command = new Command("truncate-file", "truncate(2) a window file") { file, size };
        command.SetAction(p => Run(p.GetValue(file)!, p.GetValue(size)!));
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
            return Report.Fail("truncate-file", $"--size: {e.Message}");
        }

        if (!File.Exists(path))
        {
            return Report.Fail("truncate-file", $"{path} does not exist");
        }

        Report.Line("size_before", new FileInfo(path).Length);
        // The path-based call a stray script would make, not ftruncate on a descriptor.
        int r;
        fixed (byte* p = Encoding.UTF8.GetBytes(path + "\0"))
        {
            r = LibC.truncate(p, (long)size);
        }

        Report.Line("truncate", Report.Outcome(r, Errno.Last));
        Report.Line("size_after", new FileInfo(path).Length);
        return 0;
    }
}
