using Vop.TestSupport;
using Vop.Links.Windows;

namespace Vop.Links.Tests;

public class WindowTests
{
    [Fact]
    public void MemfdWindowIsSharedBetweenTwoMappings()
    {
        using var link = new InProcessLink(1 << 20);
        link.DeviceWindow.Accessor.WriteU64(0x1234 * 8, 0xfeedface_cafebeef);
        Assert.Equal(0xfeedface_cafebeefUL, link.DriverWindow.Accessor.ReadU64(0x1234 * 8));
    }

    [Theory]
    [InlineData(4096UL, 8)]
    [InlineData(4095UL, 2)]
    [InlineData(ulong.MaxValue, 1)]
    [InlineData(ulong.MaxValue - 3, 4)]
    public void AccessorRejectsEveryOffsetPastTheEnd(ulong offset, int width)
    {
        using SharedWindow w = SharedWindow.CreateGuarded(4096);
        WindowAccessor a = w.Accessor;
        Assert.Throws<WindowAccessException>(() =>
        {
            _ = width switch
            {
                1 => a.ReadU8(offset),
                2 => a.ReadU16(offset),
                4 => a.ReadU32(offset),
                _ => a.ReadU64(offset),
            };
        });
    }

    [Fact]
    public void AccessorReachesTheLastByteOfAGuardedWindow()
    {
        using SharedWindow w = SharedWindow.CreateGuarded(10_000);
        WindowAccessor a = w.Accessor;
        a.WriteU64(10_000 - 8, 42);
        Assert.Equal(42UL, a.ReadU64(10_000 - 8));
        Assert.Throws<WindowAccessException>(() => a.ReadU64(10_000 - 7));
        Assert.Throws<WindowAccessException>(() => a.Bytes(9_999, 2).Length);
        Assert.True(a.Contains(0, 10_000));
        Assert.False(a.Contains(1, 10_000));
        Assert.False(a.Contains(ulong.MaxValue, 2));
    }

    [Fact]
    public void FileWindowMapsAtAnUnalignedOffset()
    {
        string path = Path.Combine("/dev/shm", $"vop-test-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (SharedWindow w = SharedWindow.OpenFile(path, 100, 8192, create: true))
            {
                w.Accessor.WriteU32(0, 0xabcdef01);
            }

            byte[] raw = File.ReadAllBytes(path);
            Assert.Equal(8292, raw.Length);
            Assert.Equal(0xabcdef01u, BitConverter.ToUInt32(raw, 100));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void MissingFileGivesAnErrorNamingIt()
    {
        IOException e = Assert.Throws<IOException>(() => SharedWindow.OpenFile("/nonexistent/vop-window", 0, 4096, create: false));
        Assert.Contains("/nonexistent/vop-window", e.Message);
    }
}
