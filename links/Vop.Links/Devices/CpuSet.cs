using System.Globalization;
using System.Text;
using Vop.Links.Interop;

namespace Vop.Links.Devices;

/// <summary>
/// A set of CPU numbers written as taskset(1) -c and cpuset(7) write them ("0", "0-3", "0,2-3"); a pump
/// thread pins itself to it with sched_setaffinity(2).
/// </summary>
public sealed class CpuSet : IEquatable<CpuSet>
{
    /// <summary>The highest CPU number a set may name (the kernel's default CONFIG_NR_CPUS range).</summary>
    public const int MaxCpu = 1023;

    private readonly int[] _cpus;

    private CpuSet(int[] cpus)
    {
        _cpus = cpus;
    }

    /// <summary>The CPU numbers, ascending, without repeats.</summary>
    public IReadOnlyList<int> Cpus => _cpus;

    /// <summary>Parses a list such as "0,2-3"; null with <paramref name="error"/> saying what is wrong.</summary>
    public static CpuSet? TryParse(string text, out string? error)
    {
        var cpus = new SortedSet<int>();
        foreach (string part in text.Split(','))
        {
            string[] range = part.Trim().Split('-');
            if (range.Length > 2 || !TryCpu(range[0], out int first) || !TryCpu(range[^1], out int last))
            {
                error = $"'{part.Trim()}' is not a CPU number (0..{MaxCpu}) or range such as 0-3";
                return null;
            }

            if (last < first)
            {
                error = $"'{part.Trim()}' is a range that runs backwards";
                return null;
            }

            for (int c = first; c <= last; c++)
            {
                cpus.Add(c);
            }
        }

        error = null;
        return new CpuSet([.. cpus]);
    }

    /// <summary>Pins the calling thread to the set; false (errno in <paramref name="errno"/>) when the kernel refused, e.g. no such CPU online.</summary>
    public unsafe bool PinCurrentThread(out int errno)
    {
        const int maskBytes = (MaxCpu + 1) / 8;
        byte* mask = stackalloc byte[maskBytes];
        new Span<byte>(mask, maskBytes).Clear();
        foreach (int c in _cpus)
        {
            mask[c / 8] |= (byte)(1 << (c % 8));
        }

        // pid 0: the calling thread (sched_setaffinity(2) acts on a thread id, not the whole process).
        if (LibCExtra.sched_setaffinity(0, maskBytes, mask) == 0)
        {
            errno = 0;
            return true;
        }

        errno = Errno.Last;
        return false;
    }

    /// <summary>The canonical form: ascending, ranges folded ("0-2,5").</summary>
    public override string ToString()
    {
        var s = new StringBuilder();
        for (int i = 0; i < _cpus.Length; i++)
        {
            int start = _cpus[i];
            while (i + 1 < _cpus.Length && _cpus[i + 1] == _cpus[i] + 1)
            {
                i++;
            }

            s.Append(s.Length == 0 ? string.Empty : ",").Append(start.ToString(CultureInfo.InvariantCulture));
            if (_cpus[i] != start)
            {
                s.Append('-').Append(_cpus[i].ToString(CultureInfo.InvariantCulture));
            }
        }

        return s.ToString();
    }

    public bool Equals(CpuSet? other) => other is not null && _cpus.AsSpan().SequenceEqual(other._cpus);

    public override bool Equals(object? obj) => Equals(obj as CpuSet);

    public override int GetHashCode() => ToString().GetHashCode(StringComparison.Ordinal);

    private static bool TryCpu(string s, out int cpu) =>
        int.TryParse(s.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out cpu) && cpu <= MaxCpu;
}
