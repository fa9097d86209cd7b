using System.CommandLine;
using Vop.Links.Windows;

namespace Vop.HostilePeer.Verbs;

/// <summary>
/// scribble: maps a window file and writes a u32 at an offset, once or --repeat times (offset 0 = the
/// header magic; a fresh layout by the victim may rewrite it between our writes).
/// </summary>
internal static class Scribble
{
    private const ulong Page = 4096;

    public static Command Create()
    {
        var file = new Option<string>("--file") { Description = "window file", Required = true };
        var offset = new Option<string>("--offset") { Description = "byte offset in the file (decimal or 0x..), 4-byte aligned", Required = true };
        var value = new Option<string>("--u32") { Description = "value to write (decimal or 0x..)", Required = true };
        var repeat = new Option<int>("--repeat") { Description = "writes", DefaultValueFactory = _ => 1 };
        var interval = new Option<int>("--interval-ms") { Description = "pause between writes", DefaultValueFactory = _ => 100 };
        var command = new Command("scribble", "write a u32 into a window file") { file, offset, value, repeat, interval };
        command.SetAction(p => Run(p.GetValue(file)!, p.GetValue(offset)!, p.GetValue(value)!, Math.Max(1, p.GetValue(repeat)), Math.Max(0, p.GetValue(interval))));
        return command;
    }

    private static int Run(string path, string offsetText, string valueText, int repeat, int intervalMs)
    {
        ulong offset, value;
        try
        {
            offset = Report.ParseNumber(offsetText);
            value = Report.ParseNumber(valueText);
        }
        catch (FormatException e)
        {
            return Report.Fail("scribble", e.Message);
        }

        if (value > uint.MaxValue || (offset & 3) != 0)
        {
            return Report.Fail("scribble", "--u32 must fit 32 bits and --offset be 4-byte aligned");
        }

        if (!File.Exists(path) || (ulong)new FileInfo(path).Length < offset + 4)
        {
            return Report.Fail("scribble", $"{path} is missing or shorter than offset 0x{offset:x} + 4");
        }

        // Map only the page that holds the offset: works on a window of any size and never past the file.
        ulong page = offset & ~(Page - 1);
        SharedWindow window;
        try
        {
            window = SharedWindow.OpenFile(path, page, Page, create: false);
        }
        catch (Exception e) when (e is IOException or ArgumentException)
        {
            return Report.Fail("scribble", e.Message);
        }

        using (window)
        {
            WindowAccessor w = window.Accessor;
            ulong at = offset - page;
            Report.Line("before", Report.Hex(w.ReadU32(at)));
            for (int i = 0; i < repeat; i++)
            {
                if (i > 0)
                {
                    Thread.Sleep(intervalMs);
                }

                w.WriteU32Release(at, (uint)value);
            }

            Thread.Sleep(Math.Min(intervalMs, 100));
            Report.Line("writes", repeat);
            Report.Line("offset", Report.Hex(offset));
            Report.Line("wrote", Report.Hex(value));
            Report.Line("after", Report.Hex(w.ReadU32(at)));
        }

        return 0;
    }
}
