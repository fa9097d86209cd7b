using System.Runtime.InteropServices;
using Tmds.Linux;

namespace Vop.Links.Interop;

/// <summary>
/// A minimal io_uring (include/uapi/linux/io_uring.h) for batching many readv/writev on one thread into one
/// io_uring_enter: one submitter, no SQPOLL, completions reaped by the same thread right after the enter.
/// Only what the pumps use: queue readv/writev, submit and wait for all of them, read each result.
/// </summary>
public sealed unsafe class IoUring : IDisposable
{
    private const int SysSetup = 425;   // __NR_io_uring_setup, the same on x86-64 and arm64 (asm-generic)
    private const int SysEnter = 426;
    private const uint SetupSingleIssuer = 1u << 12;
    private const uint SetupDeferTaskrun = 1u << 13;
    private const uint EnterGetEvents = 1;
    private const uint FeatSingleMmap = 1;
    private const long OffSqRing = 0;
    private const long OffCqRing = 0x8000000;
    private const long OffSqes = 0x10000000;
    private const byte OpReadv = 1;
    private const byte OpWritev = 2;
    private const uint RwfNowait = 0x8;

    private readonly SafeFd _fd;
    private readonly SafeMapping _sqRing;
    private readonly SafeMapping? _cqRing;
    private readonly SafeMapping _sqes;
    private readonly uint* _sqTail;
    private readonly uint* _sqArray;
    private readonly uint _sqMask;
    private readonly uint* _cqHead;
    private readonly uint* _cqTail;
    private readonly uint _cqMask;
    private readonly Cqe* _cqes;
    private readonly Sqe* _sqeBase;
    private readonly int[] _results;
    private uint _tail;
    private int _queued;

    /// <summary>A ring for up to <paramref name="entries"/> operations per submission (a power of two).</summary>
    public IoUring(uint entries)
    {
        // One submitter thread, completions run when it enters (6.1+); older kernels refuse the flags: plain.
        var p = new Params { Flags = SetupSingleIssuer | SetupDeferTaskrun };
        int fd = (int)LibCExtra.syscall(SysSetup, entries, (nint)(&p), 0, 0, 0, 0);
        if (fd < 0)
        {
            p = default;
            fd = (int)LibCExtra.syscall(SysSetup, entries, (nint)(&p), 0, 0, 0, 0);
        }

        _fd = new SafeFd(Errno.Check(fd, "io_uring_setup"));
        ulong sqBytes = p.SqOff.Array + (p.SqEntries * sizeof(uint));
        ulong cqBytes = p.CqOff.Cqes + (p.CqEntries * (ulong)sizeof(Cqe));
        bool single = (p.Features & FeatSingleMmap) != 0;
        if (single)
        {
            sqBytes = cqBytes = Math.Max(sqBytes, cqBytes);
        }

        _sqRing = Map(sqBytes, OffSqRing);
        _cqRing = single ? null : Map(cqBytes, OffCqRing);
        _sqes = Map(p.SqEntries * (ulong)sizeof(Sqe), OffSqes);
        byte* sq = _sqRing.Pointer;
        byte* cq = (_cqRing ?? _sqRing).Pointer;
        _sqTail = (uint*)(sq + p.SqOff.Tail);
        _sqArray = (uint*)(sq + p.SqOff.Array);
        _sqMask = *(uint*)(sq + p.SqOff.RingMask);
        _cqHead = (uint*)(cq + p.CqOff.Head);
        _cqTail = (uint*)(cq + p.CqOff.Tail);
        _cqMask = *(uint*)(cq + p.CqOff.RingMask);
        _cqes = (Cqe*)(cq + p.CqOff.Cqes);
        _sqeBase = (Sqe*)_sqes.Pointer;
        _tail = *_sqTail;
        Capacity = (int)p.SqEntries;
        _results = new int[Capacity];
    }

    /// <summary>How many operations one submission holds.</summary>
    public int Capacity { get; }

    /// <summary>Operations queued since the last <see cref="SubmitAndWait"/>.</summary>
    public int Queued => _queued;

    /// <summary>Queues writev(fd, iov, count); false when the submission is full. iov must stay valid until submitted.</summary>
    public bool QueueWritev(int fd, iovec* iov, int count) => Queue(OpWritev, fd, iov, count);

    /// <summary>Queues readv(fd, iov, count); false when the submission is full.</summary>
    public bool QueueReadv(int fd, iovec* iov, int count) => Queue(OpReadv, fd, iov, count);

    /// <summary>
    /// Submits everything queued in one io_uring_enter and waits until all of it completed; returns how many.
    /// Result i (<see cref="Result"/>) is what readv/writev would have returned for the i-th queued operation,
    /// or -errno. The kernel issues them in queue order, each to completion or -EAGAIN (never waits for readiness).
    /// </summary>
    public int SubmitAndWait()
    {
        int n = _queued;
        if (n == 0)
        {
            return 0;
        }

        Volatile.Write(ref *_sqTail, _tail); // release: the SQEs and array slots before the tail
        int done = 0;
        int submitted = 0;
        while (done < n)
        {
            long r = LibCExtra.syscall(SysEnter, _fd.Fd, n - submitted, n - done, EnterGetEvents, 0, 0);
            if (r < 0)
            {
                int errno = Errno.Last;
                if (errno == LibC.EINTR || errno == LibC.EAGAIN || errno == LibC.EBUSY)
                {
                    continue;
                }

                Errno.Throw("io_uring_enter", errno);
            }

            submitted += (int)r;
            uint head = *_cqHead;
            uint tail = Volatile.Read(ref *_cqTail); // acquire: the CQEs before the tail
            for (; head != tail; head++)
            {
                Cqe* c = &_cqes[head & _cqMask];
                _results[(int)c->UserData] = c->Res;
                done++;
            }

            Volatile.Write(ref *_cqHead, head);
        }

        _queued = 0;
        return n;
    }

    /// <summary>The result of the i-th operation of the last submission.</summary>
    public int Result(int i) => _results[i];

    public void Dispose()
    {
        _sqes.Dispose();
        _cqRing?.Dispose();
        _sqRing.Dispose();
        _fd.Dispose();
    }

    private bool Queue(byte op, int fd, iovec* iov, int count)
    {
        if (_queued == Capacity)
        {
            return false;
        }

        uint index = _tail & _sqMask;
        Sqe* s = &_sqeBase[index];
        *s = default;
        s->Opcode = op;
        s->Fd = fd;
        s->Addr = (ulong)iov;
        s->Len = (uint)count;
        // RWF_NOWAIT: -EAGAIN instead of parking the operation until the fd is ready. io_uring ignores the
        // fd's O_NONBLOCK and would otherwise wait in SubmitAndWait for a TAP read or a full socket.
        s->RwFlags = RwfNowait;
        s->UserData = (ulong)_queued;
        _sqArray[index] = index;
        _tail++;
        _queued++;
        return true;
    }

    private SafeMapping Map(ulong length, long offset)
    {
        void* p = LibC.mmap(null, (size_t)length, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED | LibC.MAP_POPULATE, _fd.Fd, offset);
        if (p == (void*)-1)
        {
            Errno.Throw("mmap(io_uring)");
        }

        return new SafeMapping((IntPtr)p, length);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct SqRingOffsets
    {
        public uint Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1;
        public ulong UserAddr;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CqRingOffsets
    {
        public uint Head, Tail, RingMask, RingEntries, Overflow, Cqes, Flags, Resv1;
        public ulong UserAddr;
    }

    /// <summary>struct io_uring_params (120 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Params
    {
        public uint SqEntries, CqEntries, Flags, SqThreadCpu, SqThreadIdle, Features, WqFd, Resv0, Resv1, Resv2;
        public SqRingOffsets SqOff;
        public CqRingOffsets CqOff;
    }

    /// <summary>struct io_uring_sqe (64 bytes); the fields readv/writev use.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 64)]
    private struct Sqe
    {
        [FieldOffset(0)]
        public byte Opcode;

        [FieldOffset(4)]
        public int Fd;

        [FieldOffset(8)]
        public ulong Off;

        [FieldOffset(16)]
        public ulong Addr;

        [FieldOffset(24)]
        public uint Len;

        [FieldOffset(28)]
        public uint RwFlags;

        [FieldOffset(32)]
        public ulong UserData;
    }

    /// <summary>struct io_uring_cqe (16 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Cqe
    {
        public ulong UserData;
        public int Res;
        public uint Flags;
    }
}
