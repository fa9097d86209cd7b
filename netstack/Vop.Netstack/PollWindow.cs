using System.Diagnostics;
using System.Globalization;

namespace Vop.Netstack;

/// <summary>
/// How long a pump keeps polling after work before it arms notifications and sleeps. VOP_POLL_US
/// overrides the default for experiments (0 = sleep at once).
/// </summary>
internal static class PollWindow
{
    public const int DefaultMicroseconds = 50;

    public static readonly long Ticks = Stopwatch.Frequency * Microseconds / 1_000_000;

    public static int Microseconds =>
        int.TryParse(Environment.GetEnvironmentVariable("VOP_POLL_US"), NumberStyles.None, CultureInfo.InvariantCulture, out int us) && us <= 100_000
            ? us
            : DefaultMicroseconds;
}
