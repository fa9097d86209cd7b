using Vop.Links.Devices;

namespace Vop.Appliance.Config;

/// <summary>A link's keys for its datapath threads: poll (adaptive, busy, sleep) and cpus (a CPU list as taskset -c takes it).</summary>
internal static class PumpSettingsValidator
{
    private const string OnlineCpusFile = "/sys/devices/system/cpu/online";

    public static PumpSettings Validate(ConfigKey at, LinkConfigFile l)
    {
        PollMode poll = l.Poll is null ? PollMode.Adaptive : ConfigNames.PollModes.Parse(at["poll"], l.Poll, $"must be {ConfigNames.PollModes.List}");
        CpuSet? cpus = null;
        if (l.Cpus is not null)
        {
            cpus = CpuSet.TryParse(l.Cpus, out string? error) ?? throw at["cpus"].Error(error!);
            CpuSet? online = File.Exists(OnlineCpusFile) ? CpuSet.TryParse(File.ReadAllText(OnlineCpusFile).Trim(), out _) : null;
            int missing = online is null ? -1 : cpus.Cpus.FirstOrDefault(c => !online.Cpus.Contains(c), -1);
            if (missing >= 0)
            {
                throw at["cpus"].Error($"CPU {missing} is not online on this machine (online: {online})");
            }
        }

        return poll == PollMode.Adaptive && cpus is null ? PumpSettings.Default : new PumpSettings(poll, cpus);
    }
}
