using Vop.Links.Doorbells;
using Vop.Links.Transport;

namespace Vop.Links.Pci;

/// <summary>
/// The NTB register profile of a <see cref="PciLinkEnd"/>: doorbells are bits of the NTB's doorbell
/// registers instead of counters in the window, and the peer counts as attached only while its scratchpads
/// say it is the vop peer this end expects (<see cref="NtbHandshake"/>). Used by the end's poller thread
/// only: <see cref="Poll"/> reads the status register, clears what it saw and wakes every vector on those
/// bits (a shared bit wakes all its queues; each looks at its own ring, a spurious wake-up is harmless);
/// <see cref="PeerMatches"/> publishes this side's scratchpads whenever its epoch changes and checks the
/// peer's. Neither allocates once running; a refusal's message is made once per distinct problem.
/// </summary>
public sealed class NtbNotifier : IDisposable
{
    /// <summary>How long the peer's scratchpads may lag its state block (epoch, or not written yet) before that is a refusal.</summary>
    public const long GraceMs = 1000;

    /// <summary>The scratchpads are read at most this often; the doorbell status on every poll.</summary>
    private const long CheckEveryMs = 20;

    private readonly NtbRegisters _registers;
    private readonly NtbIdentity _me;
    private readonly Action<string?>? _problem;
    private bool _published;
    private uint _publishedEpoch;
    private (uint Magic, uint Word1, uint WindowKiB, uint Epoch) _lastSpads;
    private uint _lastPeerEpoch;
    private bool _haveLast;
    private NtbPeerState _state;
    private string? _why;
    private long _lagSince = -1;
    private long _checkedAt;
    private bool _checkedOnce;
    private bool _matches;
    private string? _reported;

    /// <param name="registers">The NTB's register block (owned from now on).</param>
    /// <param name="deviceSide">This end's role, published to the peer and the peer's expected opposite.</param>
    /// <param name="vectors">The link's vectors; both ends must have the same.</param>
    /// <param name="windowSize">The window's size; both ends must map the same.</param>
    /// <param name="problem">Called on the poller thread with a refusal's one line when the peer's scratchpads stop matching (once per distinct problem), and with null when they match again.</param>
    public NtbNotifier(NtbRegisters registers, bool deviceSide, int vectors, ulong windowSize, Action<string?>? problem = null)
    {
        _registers = registers;
        _me = new NtbIdentity(deviceSide, vectors, registers.Layout.Bits, windowSize, 0);
        _problem = problem;
    }

    public NtbRegisters Registers => _registers;

    public Doorbell NewPeerDoorbell(int vector) => new NtbRegisterDoorbell(_registers, vector);

    /// <summary>Takes the rung bits from the status register and wakes their vectors; true when any was rung.</summary>
    public bool Poll(EventFdDoorbell[] local)
    {
        ulong rung = _registers.ReadStatus();
        if (rung == 0)
        {
            return false;
        }

        // Clear before waking: a ring that lands after the clear sets its bit again and is seen on the next
        // poll, and the woken pumps read their rings after this point, so no published index is missed.
        _registers.Clear(rung);
        NtbRegisterLayout layout = _registers.Layout;
        for (int v = 0; v < local.Length; v++)
        {
            if ((rung & (1UL << layout.BitOf(v))) != 0)
            {
                local[v].Ring();
            }
        }

        return true;
    }

    /// <summary>
    /// Publishes this side's scratchpads when <paramref name="ownEpoch"/> changed, then says whether the
    /// peer (alive by its heartbeat: <paramref name="peerAlive"/>) wrote the scratchpads this end expects.
    /// </summary>
    public bool PeerMatches(uint ownEpoch, SideSnapshot peer, bool peerAlive, long nowMs)
    {
        if (!_published || ownEpoch != _publishedEpoch)
        {
            NtbHandshake.Publish(_registers, _me with { Epoch = ownEpoch });
            _published = true;
            _publishedEpoch = ownEpoch;
        }

        if (!peerAlive)
        {
            _lagSince = -1;
            _matches = false;
            return false;
        }

        if (_checkedOnce && nowMs - _checkedAt < CheckEveryMs)
        {
            return _matches;
        }

        _checkedOnce = true;
        _checkedAt = nowMs;
        (uint, uint, uint, uint) spads = NtbHandshake.Read(_registers);
        if (!_haveLast || spads != _lastSpads || peer.Epoch != _lastPeerEpoch)
        {
            _haveLast = true;
            _lastSpads = spads;
            _lastPeerEpoch = peer.Epoch;
            _state = NtbHandshake.Check(spads, _me, peer.Epoch, out _why);
        }

        switch (_state)
        {
            case NtbPeerState.Matches:
                _lagSince = -1;
                Report(null);
                _matches = true;
                return true;
            case NtbPeerState.Mismatch:
                Report(_why);
                break;
            default:
                // Not written yet, or the epoch of a peer that is (re)starting: wait a moment before refusing.
                if (_lagSince < 0)
                {
                    _lagSince = nowMs;
                }
                else if (nowMs - _lagSince >= GraceMs)
                {
                    Report(_why ?? "the peer runs in the window but wrote no scratchpads: it does not use the NTB registers (is its link configured with registers?)");
                }

                break;
        }

        _matches = false;
        return false;
    }

    private void Report(string? problem)
    {
        if (problem != _reported)
        {
            _reported = problem;
            _problem?.Invoke(problem);
        }
    }

    public void Dispose() => _registers.Dispose();
}
