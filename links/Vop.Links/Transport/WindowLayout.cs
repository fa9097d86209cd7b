namespace Vop.Links.Transport;

/// <summary>
/// Fixed offsets of the vop window layout, version 1. docs/wire-format.md is the prose of this file;
/// change both together. "D" = written only by the device side, "R" = written only by the driver side.
/// </summary>
public static class WindowLayout
{
    /// <summary>'V','O','P','W' read as a little-endian u32.</summary>
    public const uint Magic = 0x57504F56;
    public const ushort VersionMajor = 1;
    public const ushort VersionMinor = 0;

    // Header (D), 64 bytes at offset 0.
    public const ulong HeaderOffset = 0x0;
    public const ulong HeaderMagic = 0x00;          // u32, written last (release) once the rest is valid
    public const ulong HeaderVersionMajor = 0x04;   // u16
    public const ulong HeaderVersionMinor = 0x06;   // u16
    public const ulong HeaderWindowSize = 0x08;     // u64
    public const ulong HeaderTableOffset = 0x10;    // u32
    public const ulong HeaderSlotCount = 0x14;      // u16
    public const ulong HeaderSlotSize = 0x16;       // u16
    public const ulong HeaderRingAreaOffset = 0x18; // u64
    public const ulong HeaderRingAreaSize = 0x20;   // u64
    public const ulong HeaderBufferOffset = 0x28;   // u64
    public const ulong HeaderBufferSize = 0x30;     // u64

    // Side state blocks, one cache line each: device side's at 0x40 (D), driver side's at 0x80 (R).
    public const ulong DeviceSideState = 0x40;
    public const ulong DriverSideState = 0x80;
    public const ulong SideStateWord = 0x00;   // u32 SideState, release-stored
    public const ulong SideEpoch = 0x04;       // u32, new random non-zero value on every start
    public const ulong SideHeartbeat = 0x08;   // u64, incremented while the side runs
    public const ulong SideProcessId = 0x10;   // u32, diagnostic only
    public const ulong SideIvshmemPeer = 0x14; // u32, IvshmemPeerKnown | own ivshmem peer id (IVPosition); 0 = not on an ivshmem doorbell
    public const uint IvshmemPeerKnown = 0x10000;

    // Doorbell counters for links without interrupt fds (pci/ntb polling): u32 per vector, incremented by
    // the side that rings; the other side polls them. Device side's at 0x200 (D), driver side's at 0x300 (R).
    public const ulong DeviceDoorbells = 0x200;
    public const ulong DriverDoorbells = 0x300;
    public const int DoorbellCounters = 64;

    // Device table: fixed-size slots.
    public const ulong TableOffset = 0x1000;
    public const int SlotCount = 8;
    public const int SlotSize = 0x400;
    public const int MaxQueuesPerDevice = 16;
    public const int MaxConfigSize = 0xC0;

    // Slot, device-owned part (D).
    public const ulong SlotDeviceType = 0x000;      // u32 DeviceType; 0 = empty slot
    public const ulong SlotQueueCount = 0x004;      // u16
    public const ulong SlotConfigSize = 0x006;      // u16
    public const ulong SlotDeviceFeatures = 0x008;  // u64
    public const ulong SlotConfigGeneration = 0x010; // u32, odd while config is being rewritten
    public const ulong SlotDeviceStatus = 0x014;    // u32: the status the device side accepted, plus NEEDS_RESET
    public const ulong SlotDeviceGeneration = 0x018; // u32, bumped on every insert and every completed reset
    public const ulong SlotStatusAck = 0x01C;       // u32: the driver's status sequence number last processed
    public const ulong SlotConfig = 0x040;          // MaxConfigSize bytes of device config space
    public const ulong SlotQueues = 0x100;          // MaxQueuesPerDevice x QueueEntrySize
    public const int QueueEntrySize = 0x20;
    public const ulong QueueSize = 0x00;            // u16, power of two
    public const ulong QueueVector = 0x02;          // u16, doorbell vector for this queue
    public const ulong QueueDescOffset = 0x08;      // u64 window offset of the descriptor table
    public const ulong QueueAvailOffset = 0x10;     // u64 window offset of the avail ring
    public const ulong QueueUsedOffset = 0x18;      // u64 window offset of the used ring

    // Slot, driver-owned part (R), its own cache lines.
    public const ulong SlotDriverFeatures = 0x300;  // u64
    public const ulong SlotDriverStatus = 0x308;    // u32 virtio status written by the driver side
    public const ulong SlotStatusSeq = 0x30C;       // u32, bumped with every driver status write

    /// <summary>Start of slot <paramref name="index"/>.</summary>
    public static ulong Slot(int index) => TableOffset + ((ulong)index * SlotSize);

    /// <summary>Start of queue entry <paramref name="queue"/> in slot <paramref name="index"/>.</summary>
    public static ulong QueueEntry(int index, int queue) => Slot(index) + SlotQueues + ((ulong)queue * QueueEntrySize);

    /// <summary>End of the device table; the ring area starts at or after this.</summary>
    public static ulong TableEnd => TableOffset + ((ulong)SlotCount * SlotSize);
}

/// <summary>Per-side state word values.</summary>
public enum SideState : uint
{
    Absent = 0,
    Starting = 1,
    Running = 2,
    Stopped = 3,
}

/// <summary>virtio device IDs carried in the device table (virtio 1.2 section 5).</summary>
public enum DeviceType : uint
{
    None = 0,
    Net = 1,
    Console = 3,

    /// <summary>vop's own raw buffer-exchange device for ring tests and benchmarks; not a virtio ID.</summary>
    RingTest = 0xFFFE,
}

/// <summary>virtio device status bits (virtio 1.2 section 2.1).</summary>
[Flags]
public enum VirtioStatus : uint
{
    Reset = 0,
    Acknowledge = 1,
    Driver = 2,
    DriverOk = 4,
    FeaturesOk = 8,
    NeedsReset = 0x40,
    Failed = 0x80,
}

/// <summary>Transport feature bits shared by every device type (virtio 1.2 section 6).</summary>
public static class VirtioFeatures
{
    public const ulong IndirectDesc = 1UL << 28;
    public const ulong EventIdx = 1UL << 29;
    public const ulong Version1 = 1UL << 32;

    /// <summary>Bits the vop transport itself understands; device bits (0..23) are the device's business.</summary>
    public const ulong TransportMask = EventIdx | Version1;
}
