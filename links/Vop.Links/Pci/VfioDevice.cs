using System.Text;
using Tmds.Linux;
using Vop.Links.Doorbells;
using Vop.Links.Interop;

namespace Vop.Links.Pci;

/// <summary>
/// A PCI function bound to vfio-pci (linux/vfio.h), for what sysfs cannot give userspace: writes to an
/// MMIO register BAR (pwrite on the device fd) and MSI-X interrupts delivered on eventfds (SET_IRQS).
/// Needs an IOMMU (in a VM: q35 with intel-iommu and intel_iommu=on); there is no noiommu fallback.
/// </summary>
public sealed unsafe class VfioDevice : IDisposable
{
    // _IO(';', 100 + n)
    private const int GetApiVersion = 0x3B64;
    private const int SetIommu = 0x3B66;
    private const int GroupGetStatus = 0x3B67;
    private const int GroupSetContainer = 0x3B68;
    private const int GroupGetDeviceFd = 0x3B6A;
    private const int DeviceGetRegionInfo = 0x3B6C;
    private const int DeviceSetIrqs = 0x3B6E;
    private const int Type1Iommu = 1;
    private const uint GroupViable = 1;
    private const uint IrqDataEventfd = 1 << 2;
    private const uint IrqActionTrigger = 1 << 5;
    private const uint MsixIrqIndex = 2;
    private const int ConfigRegionIndex = 7;

    private readonly SafeFd _container;
    private readonly SafeFd _group;
    private readonly SafeFd _device;
    private readonly List<EventFdDoorbell> _interrupts = [];

    private VfioDevice(string bdf, SafeFd container, SafeFd group, SafeFd device)
    {
        Bdf = bdf;
        _container = container;
        _group = group;
        _device = device;
    }

    public string Bdf { get; }

    /// <summary>Opens <paramref name="bdf"/> (e.g. 0000:00:05.0) through its IOMMU group; one clear error when it is not bound to vfio-pci.</summary>
    public static VfioDevice Open(string bdf)
    {
        string sys = $"/sys/bus/pci/devices/{bdf}";
        string? driver = Directory.Exists(sys + "/driver") ? Path.GetFileName(new DirectoryInfo(sys + "/driver").ResolveLinkTarget(true)?.FullName) : null;
        if (driver != "vfio-pci")
        {
            throw new IOException($"{bdf} is bound to {driver ?? "no driver"}, not vfio-pci (echo vfio-pci > {sys}/driver_override; echo {bdf} > /sys/bus/pci/drivers_probe)");
        }

        string group = Path.GetFileName(new DirectoryInfo(sys + "/iommu_group").ResolveLinkTarget(true)?.FullName
            ?? throw new IOException($"{bdf} has no IOMMU group (VFIO needs an IOMMU; a VM needs intel-iommu and intel_iommu=on)"));
        SafeFd container = OpenFile("/dev/vfio/vfio");
        SafeFd? groupFd = null;
        SafeFd? device = null;
        try
        {
            groupFd = OpenFile($"/dev/vfio/{group}");
            Errno.Check(LibC.ioctl(container.Fd, GetApiVersion, null), "VFIO_GET_API_VERSION");
            uint* status = stackalloc uint[2] { 8, 0 };
            Errno.Check(LibC.ioctl(groupFd.Fd, GroupGetStatus, status), "VFIO_GROUP_GET_STATUS");
            if ((status[1] & GroupViable) == 0)
            {
                throw new IOException($"IOMMU group {group} of {bdf} is not viable: bind every device of the group to vfio-pci");
            }

            int c = container.Fd;
            Errno.Check(LibC.ioctl(groupFd.Fd, GroupSetContainer, &c), "VFIO_GROUP_SET_CONTAINER");
            Errno.Check(LibC.ioctl(container.Fd, SetIommu, (void*)Type1Iommu), "VFIO_SET_IOMMU(TYPE1)");
            byte[] name = Encoding.ASCII.GetBytes(bdf + "\0");
            fixed (byte* n = name)
            {
                device = new SafeFd(Errno.Check(LibC.ioctl(groupFd.Fd, GroupGetDeviceFd, n), $"VFIO_GROUP_GET_DEVICE_FD({bdf})"));
            }

            return new VfioDevice(bdf, container, groupFd, device);
        }
        catch
        {
            device?.Dispose();
            groupFd?.Dispose();
            container.Dispose();
            throw;
        }
    }

    /// <summary>Size and offset (in the device fd) of region <paramref name="index"/> (BARs 0-5, config 7).</summary>
    public (ulong Size, ulong Offset) Region(int index)
    {
        // struct vfio_region_info { u32 argsz, flags, index, cap_offset; u64 size, offset; }
        uint* info = stackalloc uint[8];
        new Span<uint>(info, 8).Clear();
        info[0] = 32;
        info[2] = (uint)index;
        Errno.Check(LibC.ioctl(_device.Fd, DeviceGetRegionInfo, info), $"VFIO_DEVICE_GET_REGION_INFO({index})");
        return (*(ulong*)(info + 4), *(ulong*)(info + 6));
    }

    /// <summary>A 32-bit write to a register of an MMIO BAR (e.g. ivshmem's Doorbell at BAR0 + 12).</summary>
    public void WriteU32(ulong regionOffset, ulong offset, uint value)
    {
        long n = LibC.pwrite(_device.Fd, &value, 4, (off_t)(long)(regionOffset + offset));
        if (n != 4)
        {
            Errno.Throw($"pwrite(VFIO {Bdf} register 0x{offset:x})");
        }
    }

    public uint ReadU32(ulong regionOffset, ulong offset)
    {
        uint value = 0;
        long n = LibC.pread(_device.Fd, &value, 4, (off_t)(long)(regionOffset + offset));
        if (n != 4)
        {
            Errno.Throw($"pread(VFIO {Bdf} register 0x{offset:x})");
        }

        return value;
    }

    /// <summary>
    /// Routes MSI-X vectors 0..count-1 to new eventfds. Sets Bus Master Enable first: without it the
    /// device's MSI-X writes never reach the eventfds (a doorbell the other way still works).
    /// </summary>
    public IReadOnlyList<EventFdDoorbell> EnableMsix(int count)
    {
        (_, ulong config) = Region(ConfigRegionIndex);
        ushort command = 0;
        Errno.Check(LibC.pread(_device.Fd, &command, 2, (off_t)(long)(config + 4)), "pread(PCI command)");
        command |= 0x6; // memory space + bus master
        Errno.Check(LibC.pwrite(_device.Fd, &command, 2, (off_t)(long)(config + 4)), "pwrite(PCI command)");

        int size = 20 + (4 * count);
        byte* set = stackalloc byte[size];
        var head = (uint*)set;
        head[0] = (uint)size;
        head[1] = IrqDataEventfd | IrqActionTrigger;
        head[2] = MsixIrqIndex;
        head[3] = 0;
        head[4] = (uint)count;
        for (int v = 0; v < count; v++)
        {
            var e = new EventFdDoorbell();
            _interrupts.Add(e);
            ((int*)(set + 20))[v] = e.Fd;
        }

        Errno.Check(LibC.ioctl(_device.Fd, DeviceSetIrqs, set), $"VFIO_DEVICE_SET_IRQS(MSI-X, {count})");
        return _interrupts;
    }

    private static SafeFd OpenFile(string path)
    {
        byte[] p = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* s = p)
        {
            return new SafeFd(Errno.Check(LibC.open(s, LibC.O_RDWR | LibC.O_CLOEXEC, 0), $"open({path})"));
        }
    }

    public void Dispose()
    {
        _device.Dispose(); // closing the device fd tears the MSI-X routing down
        foreach (EventFdDoorbell e in _interrupts)
        {
            e.Dispose();
        }

        _group.Dispose();
        _container.Dispose();
    }
}
