using System.Globalization;
using System.Numerics;
using Vop.Netstack;
using Vop.Netstack.Virtio;

namespace Vop.Appliance.Config;

/// <summary>
/// The window's size: how a size is written (64M, 1G, 65536), its range (a power of two from 1M to 1G, as an
/// ivshmem BAR is), and room for what the driver side carves: per net device, two queues per queue pair of queueSize
/// buffers of <see cref="FrameSizes.MaxCarvedBuffer"/> bytes (the one buffer-size formula, netstack's), plus
/// 1 MiB for the header, device table and rings.
/// </summary>
internal static class WindowSizing
{
    public const string Default = "64M";
    public const ulong Min = 1UL << 20;
    public const ulong Max = 1UL << 30;
    private const ulong LayoutReserve = 1UL << 20;

    public static ulong Validate(ConfigKey at, string? text, IEnumerable<NetDeviceOptions> nets)
    {
        text ??= Default;
        ulong window = ParseSize(at, text);
        if (window < Min || window > Max || (window & (window - 1)) != 0)
        {
            string nearest = window > Min && window < Max ? $"; the nearest are {Format(BitOperations.RoundUpToPowerOf2(window) >> 1)} and {Format(BitOperations.RoundUpToPowerOf2(window))}" : string.Empty;
            throw at.Error($"{text} must be a power of two from 1M to 1G (an ivshmem BAR is a power of two){nearest}");
        }

        ulong needed = Needed(nets);
        if (window < needed)
        {
            string need = string.Create(CultureInfo.InvariantCulture, $"{Math.Ceiling(needed * 10.0 / Min) / 10:0.#}M");
            string formula = $"1M + 2 queues x {(nets.Any(n => n.QueuePairs > 1) ? "queuePairs x " : string.Empty)}queueSize x {FrameSizes.MaxCarvedBuffer >> 10} KiB per net device";
            throw at.Error(needed > Max
                ? $"{text} is too small for the devices' buffers: they need {need} ({formula}), more than the largest window (1G); use fewer net devices or a smaller queueSize"
                : $"{text} is too small for the devices' buffers: needs at least {Format(Math.Max(Min, BitOperations.RoundUpToPowerOf2(needed)))} (a power of two ≥ {need}: {formula})");
        }

        return window;
    }

    /// <summary>The least window the devices' buffers fit in.</summary>
    public static ulong Needed(IEnumerable<NetDeviceOptions> nets) =>
        LayoutReserve + nets.Aggregate(0UL, (sum, n) => sum + (2UL * (ulong)n.QueuePairs * n.QueueSize * FrameSizes.MaxCarvedBuffer));

    /// <summary>A size as it is written: 1G, 64M, 512K, or bytes.</summary>
    public static string Format(ulong size) => size switch
    {
        >= 1UL << 30 when size % (1UL << 30) == 0 => $"{size >> 30}G",
        >= 1UL << 20 when size % (1UL << 20) == 0 => $"{size >> 20}M",
        >= 1UL << 10 when size % (1UL << 10) == 0 => $"{size >> 10}K",
        _ => size.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>"64M", "1G", "65536", "512K".</summary>
    public static ulong ParseSize(ConfigKey at, string text)
    {
        string t = text.Trim();
        ulong unit = 1;
        if (t.Length > 0 && char.ToUpperInvariant(t[^1]) is 'K' or 'M' or 'G')
        {
            unit = char.ToUpperInvariant(t[^1]) switch { 'K' => 1UL << 10, 'M' => 1UL << 20, _ => 1UL << 30 };
            t = t[..^1];
        }

        if (!ulong.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) || n > (1UL << 40) / unit)
        {
            throw at.Error($"'{text}' is not a size (like 64M, 1G or 65536)");
        }

        return n * unit;
    }
}
