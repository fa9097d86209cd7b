using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Vop.Links.Tests.Infrastructure;

/// <summary>
/// QEMU with the CPU stopped (-S) and a qtest socket (no guest, no KVM): the test speaks qtest's text protocol to poke PCI
/// config space and MMIO, as QEMU's own tests/qtest/ivshmem-test.c does.
/// </summary>
public sealed class QtestMachine : IDisposable
{
    private readonly Process _qemu;
    private readonly Socket _listener;
    private readonly Socket _socket;
    private readonly StreamReader _reader;
    private readonly string _log;

    public QtestMachine(string dir, params string[] deviceArgs)
    {
        string qtest = Path.Combine(dir, "qtest.sock");
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(qtest));
        _listener.Listen(1);
        _log = Path.Combine(dir, "qemu.log");
        var psi = new ProcessStartInfo("qemu-system-x86_64") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in (string[])["-M", "q35", "-S", "-qtest", "unix:" + qtest, "-nodefaults", "-display", "none", "-monitor", "none", "-serial", "none", .. deviceArgs])
        {
            psi.ArgumentList.Add(a);
        }

        _qemu = Process.Start(psi)!;
        _listener.ReceiveTimeout = 20_000;
        IAsyncResult accept = _listener.BeginAccept(null, null);
        if (!accept.AsyncWaitHandle.WaitOne(20_000))
        {
            throw new TimeoutException("QEMU did not connect to the qtest socket: " + _qemu.StandardError.ReadToEnd());
        }

        _socket = _listener.EndAccept(accept);
        _socket.ReceiveTimeout = 20_000;
        _reader = new StreamReader(new NetworkStream(_socket), Encoding.ASCII);
    }

    public string Command(string line)
    {
        _socket.Send(Encoding.ASCII.GetBytes(line + "\n"));
        while (true)
        {
            string? reply = _reader.ReadLine() ?? throw new IOException("qtest connection closed");
            if (reply.StartsWith("OK", StringComparison.Ordinal) || reply.StartsWith("FAIL", StringComparison.Ordinal) || reply.StartsWith("ERR", StringComparison.Ordinal))
            {
                if (!reply.StartsWith("OK", StringComparison.Ordinal))
                {
                    throw new IOException($"qtest '{line}': {reply}");
                }

                return reply.Length > 3 ? reply[3..].Trim() : string.Empty;
            }
        }
    }

    private static ulong Parse(string hex) => ulong.Parse(hex.StartsWith("0x", StringComparison.Ordinal) ? hex[2..] : hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    public uint ReadL(ulong address) => (uint)Parse(Command($"readl 0x{address:x}"));

    public void WriteL(ulong address, uint value) => Command($"writel 0x{address:x} 0x{value:x}");

    private static uint ConfigAddress(int slot, int reg) => 0x80000000u | ((uint)slot << 11) | (uint)reg;

    public uint ConfigRead(int slot, int reg)
    {
        Command($"outl 0xcf8 0x{ConfigAddress(slot, reg):x}");
        return (uint)Parse(Command("inl 0xcfc"));
    }

    public void ConfigWrite(int slot, int reg, uint value)
    {
        Command($"outl 0xcf8 0x{ConfigAddress(slot, reg):x}");
        Command($"outl 0xcfc 0x{value:x}");
    }

    /// <summary>The first slot on bus 0 with this vendor:device, or -1.</summary>
    public int FindDevice(ushort vendor, ushort device)
    {
        for (int slot = 0; slot < 32; slot++)
        {
            if (ConfigRead(slot, 0) == ((uint)device << 16 | vendor))
            {
                return slot;
            }
        }

        return -1;
    }

    public string Log => File.Exists(_log) ? File.ReadAllText(_log) : string.Empty;

    public void Dispose()
    {
        _socket.Dispose();
        _listener.Dispose();
        if (!_qemu.HasExited)
        {
            _qemu.Kill();
            _qemu.WaitForExit(5000);
        }

        _qemu.Dispose();
    }
}
