using System.Diagnostics;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Links.Windows;
using Xunit.Abstractions;

namespace Vop.Links.Tests;

/// <summary>
/// 100,000 random and hostile headers and device tables per run, read by the driver side in a window
/// fenced by PROT_NONE guard pages (a read outside it kills the test host). An oracle written here in
/// 128-bit arithmetic decides every verdict on its own; header, slot and cross-device verdicts must match
/// it exactly, and what is accepted must be what the device side wrote. The seed changes per run and is
/// in every failure message; VOP_FUZZ_SEED=n replays one.
/// </summary>
public sealed class DeviceTableFuzzTests(ITestOutputHelper output) : IDisposable
{
    private const ulong WindowSize = 0x40000;
    private const int Cases = 100_000;
    private const int MaxQueues = WindowLayout.MaxQueuesPerDevice;
    // Every refusal reason the oracle knows; each must be reached.
    private static readonly string[] s_rules =
    [
        "header", "queue count", "config size", "config generation", "queue size", "alignment", "outside window",
        "outside ring area", "over buffers", "parts overlap", "vector 0", "vector >= N", "vector shared in slot",
        "queues overlap in slot", "vector shared across slots", "queues overlap across slots",
    ];

    private readonly SharedWindow _window = SharedWindow.CreateGuarded(WindowSize);

    public void Dispose() => _window.Dispose();

    private sealed class SlotPlan
    {
        public uint Type;
        public int QueueCount;
        public int ConfigSize;
        public uint ConfigGeneration;
        public readonly SplitRingLayout[] Queues = new SplitRingLayout[MaxQueues];
        public readonly ushort[] Vectors = new ushort[MaxQueues];
    }

    private readonly record struct Header(
        uint Magic, ushort Major, ulong Size, uint Table, ushort Slots, ushort SlotSize,
        ulong RingOffset, ulong RingSize, ulong BufferOffset, ulong BufferSize);

    [Fact]
    public void HostileDeviceTablesAreRefusedOrSafe()
    {
        int seed = Environment.GetEnvironmentVariable("VOP_FUZZ_SEED") is string s ? int.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : Environment.TickCount & 0x7FFFFFFF;
        output.WriteLine($"seed {seed} (VOP_FUZZ_SEED={seed} replays this run)");
        var rng = new Random(seed);
        WindowAccessor w = _window.Accessor;
        var plans = new SlotPlan[WindowLayout.SlotCount];
        for (int i = 0; i < plans.Length; i++)
        {
            plans[i] = new SlotPlan();
        }

        var placed = new List<ulong>();
        var usedVectors = new List<ushort>();
        var accepted = new List<DriverSlot>();
        var acceptedPlans = new List<SlotPlan>();
        var refusals = new Dictionary<string, int>();
        int headersAccepted = 0, slotsAccepted = 0, slotsRefused = 0, disjoint = 0, notDisjoint = 0;
        var clock = Stopwatch.StartNew();
        for (int c = 0; c < Cases; c++)
        {
            string At() => $"seed {seed} case {c}";
            Header h = RandomHeader(rng);
            WriteHeader(w, h);
            string? headerError = WindowHeader.TryRead(w, out WindowGeometry g);
            bool headerOk = HeaderIsValid(h);
            Check(headerOk == (headerError is null), () => $"{At()}: header {h} gave \"{headerError}\", oracle says {(headerOk ? "valid" : "invalid")}");
            if (!headerOk)
            {
                Assert.Equal(default(WindowGeometry), g);
                Count(refusals, "header");
                continue;
            }

            headersAccepted++;
            AssertGeometry(g, At);
            int maxVector = rng.Next(4) switch { 0 => 16, 1 => 2 + rng.Next(14), _ => 64 };
            placed.Clear();
            usedVectors.Clear();
            int nextVector = 1;
            for (int i = 0; i < plans.Length; i++)
            {
                PlanSlot(rng, plans[i], g, maxVector, placed, usedVectors, ref nextVector);
                WriteSlot(w, rng, i, plans[i]);
            }

            accepted.Clear();
            acceptedPlans.Clear();
            for (int i = 0; i < plans.Length; i++)
            {
                DriverSlot? slot = DriverSlot.TryDiscover(w, g, i, maxVector, out string? error);
                string? why = SlotOracle(plans[i], g, maxVector);
                string Where() => $"{At()} slot {i} (N {maxVector}, geometry {g})";
                if (plans[i].Type == 0)
                {
                    Check(slot is null && error is null, () => $"{Where()}: empty slot gave \"{error}\"");
                    continue;
                }

                if (why is null)
                {
                    Check(slot is not null && error is null, () => $"{Where()}: valid slot refused: \"{error}\"");
                    AssertMatchesPlan(w, slot!, plans[i], i, Where);
                    AssertSlotInvariants(slot!, g, maxVector, Where);
                    accepted.Add(slot!);
                    acceptedPlans.Add(plans[i]);
                    slotsAccepted++;
                }
                else
                {
                    Check(slot is null && error is not null, () => $"{Where()}: accepted, but the oracle says {why}");
                    Check(error!.StartsWith($"slot {i}", StringComparison.Ordinal) && !error.Contains('\n', StringComparison.Ordinal), () => $"{Where()}: error line \"{error}\"");
                    Count(refusals, why);
                    slotsRefused++;
                }
            }

            // The whole session's set, then a shuffled subset (a session may take only some devices).
            for (int round = 0; round < 2; round++)
            {
                if (round == 1)
                {
                    Shuffle(rng, accepted);
                    accepted.RemoveRange(0, rng.Next(accepted.Count + 1));
                }

                string? clash = DriverSlot.CheckDisjoint(accepted);
                string? oracle = DisjointOracle(accepted);
                string Where() => $"{At()} CheckDisjoint round {round} over slots [{string.Join(", ", accepted.Select(a => a.Index))}]";
                Check((clash is null) == (oracle is null), () => $"{Where()}: gave \"{clash}\", oracle says {oracle ?? "disjoint"}");
                if (clash is not null)
                {
                    Check(clash.StartsWith("slot ", StringComparison.Ordinal) && !clash.Contains('\n', StringComparison.Ordinal), () => $"{Where()}: error line \"{clash}\"");
                    notDisjoint++;
                    Count(refusals, oracle!);
                }
                else if (accepted.Count > 1)
                {
                    disjoint++;
                }
            }
        }

        clock.Stop();
        output.WriteLine($"{Cases} cases in {clock.ElapsedMilliseconds} ms: headers accepted {headersAccepted}, slots accepted {slotsAccepted} refused {slotsRefused}, " +
            $"sets disjoint {disjoint} clashing {notDisjoint}");
        foreach ((string why, int n) in refusals.OrderBy(r => r.Key, StringComparer.Ordinal))
        {
            output.WriteLine($"  {why}: {n}");
        }

        // Both verdicts in numbers, and every rule reached, or the fuzz proves little.
        string summary = $"seed {seed}: {string.Join(", ", refusals.Select(r => $"{r.Key} {r.Value}"))}";
        Check(headersAccepted > Cases / 3 && Cases - headersAccepted > Cases / 10, () => $"headers accepted {headersAccepted} of {Cases}; {summary}");
        Check(slotsAccepted > 50_000 && slotsRefused > 50_000, () => $"slots accepted {slotsAccepted}, refused {slotsRefused}; {summary}");
        Check(disjoint > 10_000 && notDisjoint > 10_000, () => $"sets disjoint {disjoint}, clashing {notDisjoint}; {summary}");
        foreach (string rule in s_rules)
        {
            Check(refusals.GetValueOrDefault(rule) > 100, () => $"rule \"{rule}\" reached only {refusals.GetValueOrDefault(rule)} times; {summary}");
        }
    }

    private static void Check(bool ok, Func<string> message)
    {
        if (!ok)
        {
            Assert.Fail(message());
        }
    }

    private static void Count(Dictionary<string, int> counts, string key) => counts[key] = counts.GetValueOrDefault(key) + 1;

    // ---- generators ----

    /// <summary>A value near <paramref name="near"/> most of the time, else one a hostile writer would try.</summary>
    private static ulong Hostile(Random rng, ulong near) => rng.Next(10) switch
    {
        0 => 0,
        1 => ulong.MaxValue - (ulong)rng.Next(0, 0x2000),
        2 => (ulong)rng.NextInt64(),
        3 => (ulong)rng.NextInt64(0, (long)WindowSize + 0x2000),
        4 => WindowSize - (ulong)rng.Next(0, 0x1000),
        5 => 0x1000UL * (ulong)rng.Next(0, 5),
        _ => near + (ulong)rng.Next(-0x100, 0x100),
    };

    private static Header RandomHeader(Random rng)
    {
        ulong ringOffset = WindowLayout.TableEnd + (0x1000UL * (ulong)rng.Next(0, 4));
        ulong ringSize = rng.Next(3) == 0 ? (ulong)rng.Next(0, 0x10000) : 0x1000UL * (ulong)rng.Next(1, 16);
        ulong bufferOffset = ringOffset + ringSize + (rng.Next(4) == 0 ? (ulong)rng.Next(0, 0x2000) : 0);
        ulong bufferSize = WindowSize - bufferOffset - (rng.Next(4) == 0 ? (ulong)rng.Next(0, 0x1000) : 0);
        bool Mutate(int percent) => rng.Next(100) < percent;
        return new Header(
            Mutate(2) ? (rng.Next(2) == 0 ? 0u : (uint)rng.Next()) : WindowLayout.Magic,
            Mutate(2) ? (ushort)rng.Next(65536) : WindowLayout.VersionMajor,
            Mutate(3) ? Hostile(rng, WindowSize) : WindowSize,
            Mutate(2) ? (uint)Hostile(rng, WindowLayout.TableOffset) : (uint)WindowLayout.TableOffset,
            Mutate(2) ? (ushort)rng.Next(65536) : (ushort)WindowLayout.SlotCount,
            Mutate(2) ? (ushort)rng.Next(65536) : (ushort)WindowLayout.SlotSize,
            Mutate(6) ? Hostile(rng, ringOffset) : ringOffset,
            Mutate(5) ? Hostile(rng, ringSize) : ringSize,
            Mutate(5) ? Hostile(rng, bufferOffset) : bufferOffset,
            Mutate(5) ? Hostile(rng, bufferSize) : bufferSize);
    }

    private static void WriteHeader(in WindowAccessor w, Header h)
    {
        w.Clear(0, WindowLayout.DeviceSideState);
        w.WriteU16(WindowLayout.HeaderVersionMajor, h.Major);
        w.WriteU64(WindowLayout.HeaderWindowSize, h.Size);
        w.WriteU32(WindowLayout.HeaderTableOffset, h.Table);
        w.WriteU16(WindowLayout.HeaderSlotCount, h.Slots);
        w.WriteU16(WindowLayout.HeaderSlotSize, h.SlotSize);
        w.WriteU64(WindowLayout.HeaderRingAreaOffset, h.RingOffset);
        w.WriteU64(WindowLayout.HeaderRingAreaSize, h.RingSize);
        w.WriteU64(WindowLayout.HeaderBufferOffset, h.BufferOffset);
        w.WriteU64(WindowLayout.HeaderBufferSize, h.BufferSize);
        w.WriteU32Release(WindowLayout.HeaderMagic, h.Magic);
    }

    private static void PlanSlot(Random rng, SlotPlan plan, in WindowGeometry g, int maxVector, List<ulong> placed, List<ushort> usedVectors, ref int nextVector)
    {
        plan.Type = rng.Next(100) switch
        {
            < 12 => 0,
            < 90 => rng.Next(3) switch { 0 => (uint)DeviceType.Net, 1 => (uint)DeviceType.Console, _ => (uint)DeviceType.RingTest },
            _ => (uint)rng.Next(1, int.MaxValue),
        };
        plan.QueueCount = rng.Next(100) switch
        {
            < 3 => 0,
            < 6 => rng.Next(MaxQueues + 1, 65536),
            < 9 => MaxQueues,
            _ => rng.Next(1, 4),
        };
        plan.ConfigSize = rng.Next(100) < 3 ? rng.Next(WindowLayout.MaxConfigSize + 1, 65536) : rng.Next(0, WindowLayout.MaxConfigSize + 1);
        plan.ConfigGeneration = (uint)rng.Next() & (rng.Next(1000) < 10 ? ~0u : ~1u);

        // Like the device side's allocator, from wherever the previous slot ended; sometimes from the
        // ring area's start again, which overlaps an earlier device while this one is fine by itself.
        ulong next = placed.Count == 0 || rng.Next(12) == 0 ? g.RingAreaOffset : placed[^1];
        ulong end = next;
        for (int q = 0; q < MaxQueues; q++)
        {
            ushort size = rng.Next(100) switch
            {
                < 3 => (ushort)rng.Next(65536),
                < 6 => (ushort)(1 << rng.Next(9, 16)),
                _ => (ushort)(1 << rng.Next(0, 8)),
            };
            int n = SplitRingLayout.IsValidSize(size) ? size : 1;
            bool tight = rng.Next(8) == 0; // natural alignment only: parts touch without overlapping
            ulong desc = Align(next, tight ? 16UL : 64);
            ulong avail = Align(desc + SplitRingLayout.DescBytes(n), tight ? 2UL : 64);
            ulong used = Align(avail + SplitRingLayout.AvailBytes(n), tight ? 4UL : 64);
            next = Align(used + SplitRingLayout.UsedBytes(n), 64);
            desc = MaybeHostileOffset(rng, desc, SplitRingLayout.DescBytes(n), g, placed);
            avail = MaybeHostileOffset(rng, avail, SplitRingLayout.AvailBytes(n), g, placed);
            used = MaybeHostileOffset(rng, used, SplitRingLayout.UsedBytes(n), g, placed);
            plan.Queues[q] = new SplitRingLayout(size, desc, avail, used);
            if (q < plan.QueueCount)
            {
                placed.Add(desc);
                placed.Add(avail);
                placed.Add(used);
                end = next;
            }

            ushort vector = rng.Next(100) switch
            {
                < 2 => 0,
                < 5 when usedVectors.Count > 0 => usedVectors[rng.Next(usedVectors.Count)],
                < 7 => (ushort)maxVector,
                < 8 => (ushort)(maxVector - 1),
                < 9 => (ushort)rng.Next(65536),
                _ => (ushort)nextVector,
            };
            plan.Vectors[q] = vector;
            if (q < plan.QueueCount)
            {
                usedVectors.Add(vector);
                nextVector += vector == nextVector ? 1 : 0;
            }
        }

        placed.Add(end);
    }

    private static ulong MaybeHostileOffset(Random rng, ulong offset, ulong length, in WindowGeometry g, List<ulong> placed)
    {
        if (rng.Next(100) >= 4)
        {
            return offset;
        }

        ulong ringEnd = g.RingAreaOffset + g.RingAreaSize;
        return rng.Next(16) switch
        {
            0 when placed.Count > 0 => placed[rng.Next(placed.Count)],
            1 => offset + (ulong)(1 << rng.Next(0, 8)),
            2 => offset - (ulong)(1 << rng.Next(0, 8)),
            3 => (ulong)(rng.Next(5) switch { 0 => 0x0, 1 => 0x40, 2 => 0x80, 3 => 0x200, _ => 0x300 }),
            4 => WindowLayout.TableOffset + (ulong)rng.Next(0, 0x2000),
            5 => WindowLayout.TableEnd - length + (ulong)rng.Next(0, 0x40),
            6 => g.RingAreaOffset - (ulong)rng.Next(0, 0x40),
            7 => ringEnd - length + (ulong)(4 * rng.Next(-4, 5)),
            8 => g.Buffers.Offset - length + (ulong)(4 * rng.Next(-4, 5)),
            9 => g.Buffers.Offset + (ulong)rng.Next(0, 0x1000),
            10 => WindowSize - length + (ulong)(4 * rng.Next(-4, 5)),
            11 => ulong.MaxValue - (ulong)rng.Next(0, 0x10000),
            12 => (ulong)rng.NextInt64(),
            13 => g.Buffers.Offset + g.Buffers.Length - (ulong)rng.Next(0, 0x100),
            _ => (ulong)rng.NextInt64(0, (long)WindowSize) & ~63UL,
        };
    }

    private static void WriteSlot(in WindowAccessor w, Random rng, int index, SlotPlan plan)
    {
        ulong slot = WindowLayout.Slot(index);
        w.Clear(slot, WindowLayout.SlotSize);
        w.WriteU16(slot + WindowLayout.SlotQueueCount, (ushort)plan.QueueCount);
        w.WriteU16(slot + WindowLayout.SlotConfigSize, (ushort)plan.ConfigSize);
        w.WriteU64(slot + WindowLayout.SlotDeviceFeatures, (ulong)rng.NextInt64());
        w.WriteU32(slot + WindowLayout.SlotConfigGeneration, plan.ConfigGeneration);
        w.WriteU32(slot + WindowLayout.SlotDeviceGeneration, (uint)rng.Next());
        rng.NextBytes(w.Bytes(slot + WindowLayout.SlotConfig, WindowLayout.MaxConfigSize));
        for (int q = 0; q < MaxQueues; q++)
        {
            // Entries past the queue count are garbage the driver must ignore.
            ulong e = WindowLayout.QueueEntry(index, q);
            w.WriteU16(e + WindowLayout.QueueSize, plan.Queues[q].Size);
            w.WriteU16(e + WindowLayout.QueueVector, plan.Vectors[q]);
            w.WriteU64(e + WindowLayout.QueueDescOffset, plan.Queues[q].DescOffset);
            w.WriteU64(e + WindowLayout.QueueAvailOffset, plan.Queues[q].AvailOffset);
            w.WriteU64(e + WindowLayout.QueueUsedOffset, plan.Queues[q].UsedOffset);
        }

        w.WriteU32Release(slot + WindowLayout.SlotDeviceType, plan.Type);
    }

    private static ulong Align(ulong n, ulong to) => (n + to - 1) & ~(to - 1);

    private static void Shuffle(Random rng, List<DriverSlot> list)
    {
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
    }

    // ---- the oracle: 128-bit arithmetic, so nothing here can wrap ----

    private static bool Inside(UInt128 start, UInt128 length, UInt128 areaStart, UInt128 areaLength) =>
        start >= areaStart && start + length <= areaStart + areaLength;

    private static bool Overlap(UInt128 aStart, UInt128 aLength, UInt128 bStart, UInt128 bLength) =>
        aLength > 0 && bLength > 0 && aStart < bStart + bLength && bStart < aStart + aLength;

    private static bool HeaderIsValid(Header h) =>
        h.Magic == WindowLayout.Magic && h.Major == WindowLayout.VersionMajor && h.Size == WindowSize &&
        h.Table == WindowLayout.TableOffset && h.Slots == WindowLayout.SlotCount && h.SlotSize == WindowLayout.SlotSize &&
        h.RingOffset >= WindowLayout.TableEnd && h.RingOffset % 4096 == 0 &&
        Inside(h.RingOffset, h.RingSize, 0, WindowSize) &&
        (UInt128)h.BufferOffset >= (UInt128)h.RingOffset + h.RingSize &&
        h.BufferSize > 0 && Inside(h.BufferOffset, h.BufferSize, 0, WindowSize);

    private static (ulong Start, ulong Length)[] Parts(SplitRingLayout l)
    {
        ulong n = l.Size;
        return [(l.DescOffset, 16 * n), (l.AvailOffset, 6 + (2 * n)), (l.UsedOffset, 6 + (8 * n))];
    }

    /// <summary>Null when the slot must be accepted, else the rule it breaks.</summary>
    private static string? SlotOracle(SlotPlan plan, in WindowGeometry g, int maxVector)
    {
        if (plan.QueueCount is < 1 or > MaxQueues)
        {
            return "queue count";
        }

        if (plan.ConfigSize > WindowLayout.MaxConfigSize)
        {
            return "config size";
        }

        for (int q = 0; q < plan.QueueCount; q++)
        {
            SplitRingLayout l = plan.Queues[q];
            if (l.Size == 0 || l.Size > 32768 || (l.Size & (l.Size - 1)) != 0)
            {
                return "queue size";
            }

            if (l.DescOffset % 16 != 0 || l.AvailOffset % 2 != 0 || l.UsedOffset % 4 != 0)
            {
                return "alignment";
            }

            var parts = Parts(l);
            for (int i = 0; i < parts.Length; i++)
            {
                if (!Inside(parts[i].Start, parts[i].Length, 0, WindowSize))
                {
                    return "outside window";
                }

                if (Overlap(parts[i].Start, parts[i].Length, g.Buffers.Offset, g.Buffers.Length))
                {
                    return "over buffers";
                }

                for (int j = 0; j < i; j++)
                {
                    if (Overlap(parts[i].Start, parts[i].Length, parts[j].Start, parts[j].Length))
                    {
                        return "parts overlap";
                    }
                }
            }

            foreach ((ulong start, ulong length) in parts)
            {
                if (!Inside(start, length, g.RingAreaOffset, g.RingAreaSize))
                {
                    return "outside ring area";
                }
            }

            ushort v = plan.Vectors[q];
            if (v == 0)
            {
                return "vector 0";
            }

            if (v >= maxVector)
            {
                return "vector >= N";
            }

            for (int p = 0; p < q; p++)
            {
                if (plan.Vectors[p] == v)
                {
                    return "vector shared in slot";
                }

                foreach ((ulong s1, ulong l1) in parts)
                {
                    foreach ((ulong s2, ulong l2) in Parts(plan.Queues[p]))
                    {
                        if (Overlap(s1, l1, s2, l2))
                        {
                            return "queues overlap in slot";
                        }
                    }
                }
            }
        }

        return plan.ConfigGeneration % 2 != 0 ? "config generation" : null;
    }

    private static string? DisjointOracle(List<DriverSlot> slots)
    {
        var all = new List<(ulong Start, ulong Length)>();
        var vectors = new HashSet<ushort>();
        string? clash = null;
        foreach (DriverSlot s in slots)
        {
            for (int q = 0; q < s.Queues.Count; q++)
            {
                if (!vectors.Add(s.Vectors[q]))
                {
                    clash ??= "vector shared across slots";
                }

                all.AddRange(Parts(s.Queues[q]));
            }
        }

        for (int i = 0; i < all.Count && clash is null; i++)
        {
            for (int j = 0; j < i; j++)
            {
                if (Overlap(all[i].Start, all[i].Length, all[j].Start, all[j].Length))
                {
                    clash = "queues overlap across slots";
                    break;
                }
            }
        }

        return clash;
    }

    private static void AssertGeometry(WindowGeometry g, Func<string> at)
    {
        Check(
            g.WindowSize == WindowSize && g.RingAreaOffset >= WindowLayout.TableEnd &&
            Inside(g.RingAreaOffset, g.RingAreaSize, 0, WindowSize) && Inside(g.Buffers.Offset, g.Buffers.Length, 0, WindowSize) &&
            g.Buffers.Length > 0 && !Overlap(g.RingAreaOffset, g.RingAreaSize, g.Buffers.Offset, g.Buffers.Length),
            () => $"{at()}: accepted geometry {g}");
    }

    private static void AssertMatchesPlan(in WindowAccessor w, DriverSlot slot, SlotPlan plan, int index, Func<string> where)
    {
        Check(slot.Index == index && (uint)slot.Type == plan.Type && slot.Queues.Count == plan.QueueCount && slot.Config.Length == plan.ConfigSize, () => $"{where()}: slot read back wrong");
        for (int q = 0; q < plan.QueueCount; q++)
        {
            Check(slot.Queues[q] == plan.Queues[q] && slot.Vectors[q] == plan.Vectors[q], () => $"{where()} queue {q}: read back {slot.Queues[q]} vector {slot.Vectors[q]}");
        }

        Check(w.Bytes(WindowLayout.Slot(index) + WindowLayout.SlotConfig, plan.ConfigSize).SequenceEqual(slot.Config), () => $"{where()}: config read back wrong");
    }

    /// <summary>What the driver relies on from an accepted slot, checked on what TryDiscover returned.</summary>
    private static void AssertSlotInvariants(DriverSlot slot, in WindowGeometry g, int maxVector, Func<string> where)
    {
        var parts = new List<(ulong Start, ulong Length)>();
        for (int q = 0; q < slot.Queues.Count; q++)
        {
            SplitRingLayout l = slot.Queues[q];
            ushort v = slot.Vectors[q];
            Check(v >= 1 && v < maxVector && slot.Vectors.Take(q).All(o => o != v), () => $"{where()} queue {q}: vector {v}");
            Check(SplitRingLayout.IsValidSize(l.Size) && l.DescOffset % 16 == 0 && l.AvailOffset % 2 == 0 && l.UsedOffset % 4 == 0, () => $"{where()} queue {q}: {l}");
            foreach ((ulong start, ulong length) in Parts(l))
            {
                Check(Inside(start, length, g.RingAreaOffset, g.RingAreaSize), () => $"{where()} queue {q}: part at 0x{start:x} outside the ring area");
                Check(parts.All(p => !Overlap(p.Start, p.Length, start, length)), () => $"{where()} queue {q}: part at 0x{start:x} overlaps another");
                parts.Add((start, length));
            }
        }
    }
}
