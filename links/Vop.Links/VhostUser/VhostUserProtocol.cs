namespace Vop.Links.VhostUser;

/// <summary>Front-end requests (QEMU docs/interop/vhost-user.rst, "Front-end message types").</summary>
public enum VhostUserRequest : uint
{
    GetFeatures = 1,
    SetFeatures = 2,
    SetOwner = 3,
    ResetOwner = 4,
    SetMemTable = 5,
    SetLogBase = 6,
    SetLogFd = 7,
    SetVringNum = 8,
    SetVringAddr = 9,
    SetVringBase = 10,
    GetVringBase = 11,
    SetVringKick = 12,
    SetVringCall = 13,
    SetVringErr = 14,
    GetProtocolFeatures = 15,
    SetProtocolFeatures = 16,
    GetQueueNum = 17,
    SetVringEnable = 18,
    SendRarp = 19,
    NetSetMtu = 20,
    SetBackendReqFd = 21,
    IotlbMsg = 22,
    SetVringEndian = 23,
    GetConfig = 24,
    SetConfig = 25,
    ResetDevice = 34,
    GetMaxMemSlots = 36,
    SetStatus = 39,
    GetStatus = 40,
}

/// <summary>Wire constants of vhost-user: a 12-byte native-endian header, then the payload; fds as SCM_RIGHTS.</summary>
public static class VhostUserProtocol
{
    public const int HeaderSize = 12;

    /// <summary>Largest payload we accept; the largest message a net back-end gets is SET_MEM_TABLE (8 + 8 × 32).</summary>
    public const int MaxPayload = 4096;

    public const uint Version = 0x1;
    public const uint FlagVersionMask = 0x3;
    public const uint FlagReply = 0x4;
    public const uint FlagNeedReply = 0x8;

    /// <summary>Feature bit 30: the protocol-feature messages exist (and rings start disabled).</summary>
    public const ulong ProtocolFeaturesBit = 1UL << 30;

    public const ulong ProtocolMq = 1UL << 0;
    public const ulong ProtocolReplyAck = 1UL << 3;
    public const ulong ProtocolStatus = 1UL << 16;

    /// <summary>What we offer: MQ (QEMU expects GET_QUEUE_NUM), REPLY_ACK, STATUS.</summary>
    public const ulong OfferedProtocolFeatures = ProtocolMq | ProtocolReplyAck | ProtocolStatus;

    /// <summary>KICK/CALL/ERR payload: bits 0-7 vring index, bit 8 no fd.</summary>
    public const ulong VringNoFd = 1UL << 8;

    public const int MaxMemRegions = 8;
    public const int MemRegionSize = 32;
}
