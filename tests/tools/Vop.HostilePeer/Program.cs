using System.CommandLine;
using Vop.HostilePeer.Verbs;

// A hostile peer for the hardening tests and tests/bench/soak.sh: plays an attacker with nothing but the
// published wire format and vop's own pieces. Each verb prints one key=value line per fact it observed
// and exits 0 when the attack was carried out (whether or not the victim defended itself), non-zero with
// one stderr line when it could not even try.
var root = new RootCommand("vop hostile peer")
{
    SecondClient.Create(),
    TruncateShm.Create(),
    Serve.Create(),
    PciDevice.Create(),
    Scribble.Create(),
    TruncateFile.Create(),
};
return root.Parse(args).Invoke();
