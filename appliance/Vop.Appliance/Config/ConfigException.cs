namespace Vop.Appliance.Config;

/// <summary>A configuration mistake: one line naming the file and the key.</summary>
public sealed class ConfigException : Exception
{
    public ConfigException(string message)
        : base(message)
    {
    }

    public ConfigException()
    {
    }

    public ConfigException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
