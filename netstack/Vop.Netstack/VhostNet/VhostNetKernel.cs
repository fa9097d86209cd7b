namespace Vop.Netstack.VhostNet;

/// <summary>Whether this machine's kernel offers vhost-net, for config validation and status.</summary>
public static class VhostNetKernel
{
    /// <summary>The kernel's vhost-net character device (the vhost_net module, misc minor 238).</summary>
    public const string DevicePath = VhostNetInterop.DevicePath;

    /// <summary>True when <see cref="DevicePath"/> exists (the vhost_net module is loaded or built in).</summary>
    public static bool Exists => File.Exists(DevicePath);
}
