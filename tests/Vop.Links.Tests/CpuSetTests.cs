using Vop.Links.Devices;

namespace Vop.Links.Tests;

/// <summary>The cpus key's CPU lists (taskset -c spelling) and the pinning a pump thread does with one.</summary>
public sealed class CpuSetTests
{
    [Theory]
    [InlineData("0", "0")]
    [InlineData("3,1", "1,3")]
    [InlineData("0-3", "0-3")]
    [InlineData(" 5 , 0-2,4", "0-2,4-5")]
    [InlineData("2,2,1-2", "1-2")]
    public void ListsParseToTheCanonicalForm(string text, string canonical)
    {
        CpuSet? set = CpuSet.TryParse(text, out string? error);
        Assert.True(set is not null, error);
        Assert.Equal(canonical, set.ToString());
        Assert.Equal(set, CpuSet.TryParse(canonical, out _));
    }

    [Theory]
    [InlineData("", "'' is not a CPU number")]
    [InlineData("a", "'a' is not a CPU number")]
    [InlineData("-1", "'-1' is not a CPU number")]
    [InlineData("1-2-3", "'1-2-3' is not a CPU number")]
    [InlineData("1024", "'1024' is not a CPU number (0..1023)")]
    [InlineData("0,", "'' is not a CPU number")]
    [InlineData("4-2", "'4-2' is a range that runs backwards")]
    public void MistakesSayWhichPart(string text, string expected)
    {
        Assert.Null(CpuSet.TryParse(text, out string? error));
        Assert.StartsWith(expected, error);
    }

    [Fact]
    public void PinningMovesOnlyTheCallingThread()
    {
        string before = File.ReadAllText("/proc/thread-self/status");
        string allowed = string.Empty;
        bool ok = false;
        int errno = 0;
        var t = new Thread(() =>
        {
            ok = CpuSet.TryParse("0", out _)!.PinCurrentThread(out errno);
            allowed = File.ReadAllLines("/proc/thread-self/status").Single(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal));
        });
        t.Start();
        t.Join();
        Assert.True(ok, $"errno {errno}");
        Assert.Equal("Cpus_allowed_list:\t0", allowed);
        Assert.Equal(before.Split('\n').Single(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal)),
            File.ReadAllLines("/proc/thread-self/status").Single(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal)));

        // A CPU that is not there: the kernel refuses (EINVAL), the thread keeps running unpinned.
        var u = new Thread(() => ok = CpuSet.TryParse("1023", out _)!.PinCurrentThread(out errno));
        u.Start();
        u.Join();
        Assert.False(ok);
        Assert.NotEqual(0, errno);
    }
}
