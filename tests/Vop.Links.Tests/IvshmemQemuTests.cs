using Vop.Links.Ivshmem;
using Vop.Links.Tests.Infrastructure;
using Vop.Links.Windows;

namespace Vop.Links.Tests;

/// <summary>
/// QEMU's own ivshmem-doorbell device connects to vop's ivshmem server: it gets its peer id and the shared
/// memory, a doorbell written in the guest reaches vop, and vop's doorbell reaches the guest (MSI-X).
/// </summary>
public sealed class IvshmemQemuTests : IDisposable
{
    private const uint Bar0 = 0xfebf0000;   // registers
    private const uint Bar1 = 0xfebf1000;   // MSI-X table and PBA
    private const uint Bar2 = 0xe0000000;   // shared memory
    private readonly TempPaths _paths = new();

    public void Dispose() => _paths.Dispose();

    [Fact]
    public void QemuIvshmemDoorbellDeviceJoinsVopsServer()
    {
        Assert.True(File.Exists("/usr/bin/qemu-system-x86_64"), "qemu-system-x86_64 is missing (test.sh installs qemu-system-x86)");
        using SharedWindow window = SharedWindow.CreateMemfd("vop-qemu", 1 << 20);
        window.Accessor.WriteU32(0, 0x57504F56);
        using var server = new IvshmemServer(_paths.File("ivshmem.sock"), window.Fd!, 4);
        server.Start();
        using var qemu = new QtestMachine(_paths.Root, "-chardev", $"socket,path={server.SocketPath},id=ivs", "-device", "ivshmem-doorbell,chardev=ivs,vectors=4");

        int slot = qemu.FindDevice(0x1af4, 0x1110);
        Assert.True(slot >= 0, "no ivshmem device on bus 0");
        qemu.ConfigWrite(slot, 0x10, Bar0);
        qemu.ConfigWrite(slot, 0x14, Bar1);
        qemu.ConfigWrite(slot, 0x18, Bar2);
        qemu.ConfigWrite(slot, 0x1c, 0);
        qemu.ConfigWrite(slot, 0x04, qemu.ConfigRead(slot, 0x04) | 0x6); // memory space + bus master

        // The guest's peer id (IVPosition) is the id vop's server gave it; vop itself is peer 0.
        Assert.True(Poll(() => qemu.ReadL(Bar0 + 8) == 1), "IVPosition is not 1");
        Assert.Single(server.Peers);

        // BAR2 is vop's window, both ways.
        Assert.Equal(0x57504F56u, qemu.ReadL(Bar2));
        qemu.WriteL(Bar2 + 64, 0xC0FFEE);
        Assert.Equal(0xC0FFEEu, window.Accessor.ReadU32(64));

        // Guest → vop: the Doorbell register (peer 0, vector 2) rings vop's own eventfd for vector 2.
        qemu.WriteL(Bar0 + 12, (0u << 16) | 2);
        Assert.True(server.LocalPeer.Vectors[2].Wait(5000), "vop's vector 2 was not rung by the guest");
        Assert.False(server.LocalPeer.Vectors[1].Wait(0));

        // vop → guest: enable MSI-X with the function masked, ring the guest's vector 0, see it pending in the PBA.
        int cap = (int)(qemu.ConfigRead(slot, 0x34) & 0xfc);
        while (cap != 0 && (qemu.ConfigRead(slot, cap) & 0xff) != 0x11)
        {
            cap = (int)((qemu.ConfigRead(slot, cap) >> 8) & 0xfc);
        }

        Assert.NotEqual(0, cap);
        uint control = qemu.ConfigRead(slot, cap);
        qemu.ConfigWrite(slot, cap, control | (1u << 31) | (1u << 30)); // MSI-X enable + function mask
        uint pba = qemu.ConfigRead(slot, cap + 8) & ~7u;
        Assert.Equal(0u, qemu.ReadL(Bar1 + pba) & 1);
        server.Peers.Single().Vectors[0].Ring();
        Assert.True(Poll(() => (qemu.ReadL(Bar1 + pba) & 1) == 1), "the guest's MSI-X vector 0 did not become pending");
    }

    private static bool Poll(Func<bool> condition)
    {
        long deadline = Environment.TickCount64 + 10_000;
        while (!condition())
        {
            if (Environment.TickCount64 > deadline)
            {
                return false;
            }

            Thread.Sleep(20);
        }

        return true;
    }
}
