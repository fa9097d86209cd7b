namespace Vop.Appliance.Config;

/// <summary>
/// The spellings of the config's enumerations, one table each: validation parses through them and code that
/// prints a kind, role, doorbell or end names it through them, so no other code compares these strings.
/// </summary>
public static class ConfigNames
{
    public static NameTable<LinkKind> LinkKinds { get; } = new((LinkKind.Loopback, "loopback"), (LinkKind.Pci, "pci"), (LinkKind.Ntb, "ntb"), (LinkKind.VhostUser, "vhost-user"));

    public static NameTable<LinkRole> Roles { get; } = new((LinkRole.Device, "device"), (LinkRole.Driver, "driver"));

    public static NameTable<DoorbellKind> Doorbells { get; } = new((DoorbellKind.EventFd, "eventfd"), (DoorbellKind.Poll, "poll"), (DoorbellKind.Ivshmem, "ivshmem"), (DoorbellKind.Registers, "registers"));

    public static NameTable<Vop.Links.Devices.PollMode> PollModes { get; } = new(
        (Vop.Links.Devices.PollMode.Adaptive, "adaptive"), (Vop.Links.Devices.PollMode.Busy, "busy"), (Vop.Links.Devices.PollMode.Sleep, "sleep"));

    public static NameTable<ConsoleEnd> Ends { get; } = new((ConsoleEnd.Host, "host"), (ConsoleEnd.Card, "card"));

    /// <summary>A net device's local interface; the same spellings as <see cref="Vop.Netstack.NetModeNames"/> prints.</summary>
    public static NameTable<Vop.Netstack.NetMode> NetModes { get; } = new((Vop.Netstack.NetMode.Tap, "tap"), (Vop.Netstack.NetMode.Tun, "tun"));

    public static string Name(this LinkKind kind) => LinkKinds.Name(kind);

    public static string Name(this DoorbellKind doorbell) => Doorbells.Name(doorbell);
}

/// <summary>An enumeration's config spellings.</summary>
public sealed class NameTable<T>
    where T : struct, Enum
{
    private readonly (T Value, string Name)[] _entries;

    public NameTable(params (T Value, string Name)[] entries)
    {
        _entries = entries;
    }

    /// <summary>All spellings, comma-separated, for messages: "loopback, pci, ntb, vhost-user".</summary>
    public string List => string.Join(", ", _entries.Select(e => e.Name));

    public string Name(T value) => _entries.First(e => EqualityComparer<T>.Default.Equals(e.Value, value)).Name;

    public bool TryParse(string? text, out T value)
    {
        foreach ((T v, string name) in _entries)
        {
            if (name == text)
            {
                value = v;
                return true;
            }
        }

        value = default;
        return false;
    }

    /// <summary>The value spelled <paramref name="text"/>, or a mistake at <paramref name="at"/>: "'TEXT' <paramref name="expected"/>".</summary>
    public T Parse(ConfigKey at, string text, string expected) => TryParse(text, out T value) ? value : throw at.Error($"'{text}' {expected}");
}
