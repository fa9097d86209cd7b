namespace Vop.Links;

/// <summary>
/// Exception boundaries: every pump and supervisor thread ends (or restarts its loop) on any exception
/// instead of ending the process, because whatever a peer does must cost at most its session.
/// </summary>
public static class Faults
{
    /// <summary>One line for the log: type, message and the frame that threw.</summary>
    public static string Describe(Exception e)
    {
        string? frame = e.StackTrace?.Split('\n', 2)[0].Trim();
        return frame is null ? $"{e.GetType().Name}: {e.Message}" : $"{e.GetType().Name}: {e.Message} ({frame})";
    }

    /// <summary>
    /// Starts a named background thread whose body is an exception boundary: anything that escapes it
    /// ends that thread only, with one line on stderr (the journal keeps it).
    /// </summary>
    public static Thread StartGuarded(string name, Action body)
    {
        var t = new Thread(() =>
        {
            try
            {
                body();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Console.Error.WriteLine($"vop: thread {name}: unexpected fault, contained: {Describe(e)}");
            }
        })
        { Name = name, IsBackground = true };
        t.Start();
        return t;
    }
}
