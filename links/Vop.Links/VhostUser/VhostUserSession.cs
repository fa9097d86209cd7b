using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Vop.Links.Devices;
using Vop.Links.Doorbells;
using Vop.Links.Interop;
using Vop.Links.Rings;

namespace Vop.Links.VhostUser;

/// <summary>
/// One front-end connection: applies its messages to the device's rings and memory, starts the device when
/// every ring is ready and stops it before anything it uses changes. The front-end is not trusted: a bad
/// message gets a failed REPLY_ACK (or ends the connection if it cannot be parsed), never a crash.
/// </summary>
internal sealed class VhostUserSession : IDisposable
{
    private readonly SafeFd _socket;
    private readonly IVhostUserDevice _device;
    private readonly ILogger _log;
    private readonly VhostUserVring[] _rings;
    private readonly byte[] _payload = new byte[VhostUserProtocol.MaxPayload];
    private readonly byte[] _reply = new byte[VhostUserProtocol.HeaderSize + 16];
    private readonly List<SafeFd> _fds = [];
    private readonly List<EventFdDoorbell> _retiredCalls = [];
    private GuestMemory? _memory;
    private DeviceQueue[]? _queues;   // the running device's queues, to read back where each ring stands
    private ulong _features;
    private ulong _protocolFeatures;
    private bool _running;

    public VhostUserSession(SafeFd socket, IVhostUserDevice device, ILogger log)
    {
        _socket = socket;
        _device = device;
        _log = log;
        _rings = [.. Enumerable.Range(0, device.QueueCount).Select(_ => new VhostUserVring())];
    }

    public SafeFd Socket => _socket;

    public bool Running => _running;

    /// <summary>Negotiated virtio features (without bit 30).</summary>
    public ulong Negotiated => _features & ~VhostUserProtocol.ProtocolFeaturesBit;

    /// <summary>Last SET_STATUS from the front-end (0 when it never sent one).</summary>
    public byte Status { get; private set; }

    /// <summary>Times the device was stopped because the guest or QEMU stopped a ring (reset, reboot).</summary>
    public long RingStops { get; private set; }

    /// <summary>Times the device faulted on a hostile ring state.</summary>
    public long Quarantines { get; private set; }

    private ulong Offered => _device.VhostUserFeatures | VhostUserProtocol.ProtocolFeaturesBit;

    private bool ProtocolNegotiated => (_features & VhostUserProtocol.ProtocolFeaturesBit) != 0;

    /// <summary>Reads and applies one message. False on EOF (the front-end left); throws <see cref="IOException"/> on a malformed stream.</summary>
    public bool ServeOne()
    {
        Span<byte> header = stackalloc byte[VhostUserProtocol.HeaderSize];
        DisposeFds();
        if (!UnixSocket.Receive(_socket, header, _fds))
        {
            return false;
        }

        var request = (VhostUserRequest)BinaryPrimitives.ReadUInt32LittleEndian(header);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        if ((flags & VhostUserProtocol.FlagVersionMask) != VhostUserProtocol.Version)
        {
            throw new IOException($"vhost-user message {(uint)request} has version {flags & 3}, expected 1");
        }

        if (size > VhostUserProtocol.MaxPayload)
        {
            throw new IOException($"vhost-user message {request} carries {size} bytes, more than {VhostUserProtocol.MaxPayload}");
        }

        Span<byte> payload = _payload.AsSpan(0, (int)size);
        if (size > 0 && !UnixSocket.Receive(_socket, payload, _fds))
        {
            throw new IOException($"front-end closed inside vhost-user message {request}");
        }

        if (_log.IsEnabled(LogLevel.Debug))
        {
            VhostUserLog.Message(_log, request, size, _fds.Count);
        }

        string? error;
        try
        {
            error = Apply(request, payload);
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException or IOException)
        {
            error = e.Message;
        }

        if (error is not null)
        {
            VhostUserLog.Refused(_log, request, error);
        }

        // REPLY_ACK: a u64 status for any message that asked and has no reply of its own.
        if ((flags & VhostUserProtocol.FlagNeedReply) != 0 && (_protocolFeatures & VhostUserProtocol.ProtocolReplyAck) != 0 && !HasOwnReply(request))
        {
            SendU64(request, error is null ? 0UL : 1UL);
        }

        DisposeFds();
        return true;
    }

    private static bool HasOwnReply(VhostUserRequest r) => r is VhostUserRequest.GetFeatures or VhostUserRequest.GetProtocolFeatures
        or VhostUserRequest.GetQueueNum or VhostUserRequest.GetVringBase or VhostUserRequest.GetMaxMemSlots or VhostUserRequest.GetStatus;

    /// <summary>Applies one message; null when done, else why it was refused.</summary>
    private string? Apply(VhostUserRequest request, ReadOnlySpan<byte> p)
    {
        switch (request)
        {
            case VhostUserRequest.GetFeatures:
                SendU64(request, Offered);
                return null;
            case VhostUserRequest.SetFeatures:
                ulong wanted = U64(p);
                if ((wanted & ~Offered) != 0)
                {
                    return $"features 0x{wanted:x} include bits not offered (0x{wanted & ~Offered:x})";
                }

                StopDevice();
                _features = wanted;
                break;
            case VhostUserRequest.GetProtocolFeatures:
                SendU64(request, VhostUserProtocol.OfferedProtocolFeatures);
                return null;
            case VhostUserRequest.SetProtocolFeatures:
                _protocolFeatures = U64(p) & VhostUserProtocol.OfferedProtocolFeatures;
                return null;
            case VhostUserRequest.GetQueueNum:
                SendU64(request, (ulong)(_rings.Length / 2));
                return null;
            case VhostUserRequest.GetMaxMemSlots:
                SendU64(request, VhostUserProtocol.MaxMemRegions);
                return null;
            case VhostUserRequest.SetOwner:
                return null;
            case VhostUserRequest.ResetOwner:
            case VhostUserRequest.ResetDevice:
                StopDevice();
                ResetRings();
                _features = 0;
                Status = 0;
                return null;
            case VhostUserRequest.SetMemTable:
                StopDevice();
                SetMemTable(p);
                break;
            case VhostUserRequest.SetVringNum:
                {
                    (VhostUserVring ring, uint num) = RingState(p);
                    if (!SplitRingLayout.IsValidSize((int)num))
                    {
                        return $"vring size {num} is not a power of two in 1..{SplitRingLayout.MaxSize}";
                    }

                    StopDevice();
                    ring.Size = (ushort)num;
                    break;
                }

            case VhostUserRequest.SetVringAddr:
                {
                    VhostUserVring ring = Ring(p.Length >= 40 ? BinaryPrimitives.ReadUInt32LittleEndian(p) : uint.MaxValue);
                    StopDevice();
                    ring.DescUser = BinaryPrimitives.ReadUInt64LittleEndian(p[8..]);
                    ring.UsedUser = BinaryPrimitives.ReadUInt64LittleEndian(p[16..]);
                    ring.AvailUser = BinaryPrimitives.ReadUInt64LittleEndian(p[24..]);
                    ring.HasAddresses = true;
                    break;
                }

            case VhostUserRequest.SetVringBase:
                {
                    (VhostUserVring ring, uint num) = RingState(p);
                    if (num > ushort.MaxValue)
                    {
                        return $"vring base {num} is out of range for a split ring";
                    }

                    StopDevice();
                    ring.LastAvail = (ushort)num;
                    break;
                }

            case VhostUserRequest.GetVringBase:
                {
                    uint index = p.Length >= 8 ? BinaryPrimitives.ReadUInt32LittleEndian(p) : uint.MaxValue;
                    VhostUserVring ring = Ring(index);
                    if (StopDevice())
                    {
                        RingStops++;
                    }

                    ring.Stopped();
                    SendRingState(request, index, ring.LastAvail);
                    return null;
                }

            case VhostUserRequest.SetVringKick:
            case VhostUserRequest.SetVringCall:
            case VhostUserRequest.SetVringErr:
                {
                    ulong v = U64(p);
                    VhostUserVring ring = Ring((uint)(v & 0xFF));
                    SafeFd? fd = TakeFd((v & VhostUserProtocol.VringNoFd) != 0);
                    if (request == VhostUserRequest.SetVringKick && fd is null)
                    {
                        return "a kick without an fd (polling mode) is not supported";
                    }

                    if (request == VhostUserRequest.SetVringKick)
                    {
                        StopDevice(); // the pump sleeps on the kick fd: it must not change under it
                        ring.SetKick(fd);
                    }
                    else if (request == VhostUserRequest.SetVringCall)
                    {
                        ring.SetCall(fd, _retiredCalls); // QEMU re-sends it while running (vector changes): no restart
                    }
                    else
                    {
                        ring.SetError(fd); // only this thread rings it
                    }

                    break;
                }

            case VhostUserRequest.SetVringEnable:
                {
                    (VhostUserVring ring, uint num) = RingState(p);
                    StopDevice();
                    ring.Enabled = num != 0;
                    break;
                }

            case VhostUserRequest.SetStatus:
                Status = (byte)U64(p);
                return null;
            case VhostUserRequest.GetStatus:
                SendU64(request, Status);
                return null;
            case VhostUserRequest.SendRarp:
            case VhostUserRequest.NetSetMtu:
            case VhostUserRequest.SetVringEndian:
                return null; // nothing to do for a TAP bridge on a little-endian host
            default:
                return $"request {(uint)request} is not supported";
        }

        TryStart();
        return null;
    }

    private void SetMemTable(ReadOnlySpan<byte> p)
    {
        if (p.Length < 8)
        {
            throw new InvalidDataException("SET_MEM_TABLE is shorter than its header");
        }

        uint count = BinaryPrimitives.ReadUInt32LittleEndian(p);
        if (count == 0 || count > VhostUserProtocol.MaxMemRegions || p.Length < 8 + (count * VhostUserProtocol.MemRegionSize))
        {
            throw new InvalidDataException($"SET_MEM_TABLE with {count} regions in {p.Length} bytes");
        }

        var table = new GuestMemoryRegion[count];
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> r = p.Slice(8 + (i * VhostUserProtocol.MemRegionSize), VhostUserProtocol.MemRegionSize);
            table[i] = new GuestMemoryRegion(
                BinaryPrimitives.ReadUInt64LittleEndian(r),
                BinaryPrimitives.ReadUInt64LittleEndian(r[8..]),
                BinaryPrimitives.ReadUInt64LittleEndian(r[16..]),
                BinaryPrimitives.ReadUInt64LittleEndian(r[24..]));
        }

        GuestMemory mapped = GuestMemory.Map(table, _fds);
        _memory?.Dispose();
        _memory = mapped;
        if (_log.IsEnabled(LogLevel.Information))
        {
            VhostUserLog.Memory(_log, (int)count, mapped.Size >> 20);
        }
    }

    /// <summary>Starts the device when memory and every ring are ready; a ring the memory does not hold is refused.</summary>
    private void TryStart()
    {
        int ready = ReadyPrefix();
        if (_running || _memory is null || _features == 0 || ready == 0)
        {
            return;
        }

        if ((Negotiated & (1UL << 32)) == 0)
        {
            throw new InvalidDataException("the front-end did not accept VIRTIO_F_VERSION_1 (legacy layouts are not served)");
        }

        bool eventIdx = (Negotiated & (1UL << 29)) != 0;
        var queues = new DeviceQueue[ready];
        var kicks = new EventFdDoorbell[ready];
        for (int i = 0; i < ready; i++)
        {
            VhostUserVring r = _rings[i];
            if (!_memory.TryTranslateUser(r.DescUser, SplitRingLayout.DescBytes(r.Size), out ulong desc) ||
                !_memory.TryTranslateUser(r.AvailUser, SplitRingLayout.AvailBytes(r.Size), out ulong avail) ||
                !_memory.TryTranslateUser(r.UsedUser, SplitRingLayout.UsedBytes(r.Size), out ulong used))
            {
                throw new InvalidDataException($"vring {i} addresses are not inside the memory table");
            }

            var layout = new SplitRingLayout(r.Size, desc, avail, used);
            var q = new DeviceQueue(_memory.Accessor, layout, new BufferRegion(0, _memory.Size), eventIdx, r.CallForwarder, _device.Stats[i], _memory.Regions);

            // The used index lives in guest memory: after a pump restart within one session it is what we
            // last published; after a guest reset the driver zeroed it.
            q.SetBase(r.LastAvail, _memory.Accessor.ReadU16Acquire(layout.UsedIdx));
            queues[i] = q;
            kicks[i] = r.Kick!;
        }

        _device.Start(new DeviceQueueSet(_memory.Accessor, queues, kicks, Negotiated));
        _queues = queues;
        _running = true;
    }

    /// <summary>
    /// How many rings the device can start with: all of them when every ring is ready; for a multiqueue net
    /// device (rings in pairs) the pairs from the first up to the first one not ready or not enabled, since
    /// QEMU sets up every pair but enables only those the guest asked for (VQ_PAIRS_SET, `ethtool -L`).
    /// </summary>
    private int ReadyPrefix()
    {
        if (_rings.All(r => r.Ready(ProtocolNegotiated)))
        {
            return _rings.Length;
        }

        if (_rings.Length < 4 || _rings.Length % 2 != 0)
        {
            return 0;
        }

        int pairs = 0;
        while (pairs < _rings.Length / 2 && _rings[2 * pairs].Ready(ProtocolNegotiated) && _rings[(2 * pairs) + 1].Ready(ProtocolNegotiated))
        {
            pairs++;
        }

        return 2 * pairs;
    }

    /// <summary>Stops the device if running and keeps where each ring stands. True when it was running.</summary>
    public bool StopDevice()
    {
        if (!_running)
        {
            return false;
        }

        _device.Stop();
        _running = false;
        foreach (EventFdDoorbell old in _retiredCalls)
        {
            old.Dispose(); // the pump is joined: nobody rings these any more
        }

        _retiredCalls.Clear();
        for (int i = 0; i < _queues!.Length; i++)
        {
            _rings[i].LastAvail = _queues[i].LastAvail;
        }

        _queues = null;
        return true;
    }

    /// <summary>Checks the running device for a quarantine: stop it and tell the front-end through the vring's error fd.</summary>
    public void CheckFault()
    {
        if (!_running || _device.Fault == RingErrorKind.None)
        {
            return;
        }

        RingErrorKind fault = _device.Fault;
        int ring = Array.FindIndex(_queues!, q => q.Fault != RingErrorKind.None);
        StopDevice();
        Quarantines++;
        VhostUserLog.Quarantined(_log, _device.Name, ring, fault.Label());
        if (ring >= 0)
        {
            _rings[ring].Error?.Ring();
            _rings[ring].Stopped(); // stays stopped until the front-end resets the ring
        }
    }

    private void ResetRings()
    {
        foreach (VhostUserVring r in _rings)
        {
            r.Dispose();
            r.Size = 0;
            r.HasAddresses = false;
            r.LastAvail = 0;
            r.Enabled = false;
        }
    }

    private VhostUserVring Ring(uint index) => index < (uint)_rings.Length
        ? _rings[index]
        : throw new InvalidDataException($"vring index {index} is out of range (this device has {_rings.Length})");

    private (VhostUserVring Ring, uint Num) RingState(ReadOnlySpan<byte> p)
    {
        if (p.Length < 8)
        {
            throw new InvalidDataException("vring state payload is shorter than 8 bytes");
        }

        return (Ring(BinaryPrimitives.ReadUInt32LittleEndian(p)), BinaryPrimitives.ReadUInt32LittleEndian(p[4..]));
    }

    private static ulong U64(ReadOnlySpan<byte> p) => p.Length >= 8
        ? BinaryPrimitives.ReadUInt64LittleEndian(p)
        : throw new InvalidDataException($"payload of {p.Length} bytes where a u64 was expected");

    /// <summary>The one fd that came with the message (or none when the no-fd bit says so).</summary>
    private SafeFd? TakeFd(bool noFd)
    {
        if (noFd)
        {
            return null;
        }

        if (_fds.Count != 1)
        {
            throw new InvalidDataException($"expected 1 fd with the message, got {_fds.Count}");
        }

        SafeFd fd = _fds[0];
        _fds.Clear();
        return fd;
    }

    private void SendU64(VhostUserRequest request, ulong value)
    {
        Span<byte> m = _reply.AsSpan(0, VhostUserProtocol.HeaderSize + 8);
        WriteHeader(m, request, 8);
        BinaryPrimitives.WriteUInt64LittleEndian(m[12..], value);
        UnixSocket.Send(_socket, m, []);
    }

    private void SendRingState(VhostUserRequest request, uint index, uint num)
    {
        Span<byte> m = _reply.AsSpan(0, VhostUserProtocol.HeaderSize + 8);
        WriteHeader(m, request, 8);
        BinaryPrimitives.WriteUInt32LittleEndian(m[12..], index);
        BinaryPrimitives.WriteUInt32LittleEndian(m[16..], num);
        UnixSocket.Send(_socket, m, []);
    }

    private static void WriteHeader(Span<byte> m, VhostUserRequest request, uint size)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(m, (uint)request);
        BinaryPrimitives.WriteUInt32LittleEndian(m[4..], VhostUserProtocol.Version | VhostUserProtocol.FlagReply);
        BinaryPrimitives.WriteUInt32LittleEndian(m[8..], size);
    }

    private void DisposeFds()
    {
        foreach (SafeFd fd in _fds)
        {
            fd.Dispose();
        }

        _fds.Clear();
    }

    /// <summary>Ends the connection both ways; a blocked read returns at once.</summary>
    public void Shutdown() => UnixSocket.Shutdown(_socket);

    public void Dispose()
    {
        StopDevice();
        foreach (EventFdDoorbell old in _retiredCalls)
        {
            old.Dispose();
        }

        foreach (VhostUserVring r in _rings)
        {
            r.Dispose();
        }

        _memory?.Dispose();
        _memory = null;
        DisposeFds();
        _socket.Dispose();
    }
}
