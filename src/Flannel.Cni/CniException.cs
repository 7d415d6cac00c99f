namespace Flannel.Cni;

/// <summary>The CNI spec's well-known error codes (containernetworking/cni <c>pkg/types</c>).</summary>
internal enum CniErrorCode : uint
{
    IncompatibleCniVersion = 1,
    UnsupportedField = 2,
    UnknownContainer = 3,
    InvalidEnvironmentVariables = 4,
    IOFailure = 5,
    DecodingFailure = 6,
    InvalidNetworkConfig = 7,
    InvalidNetNs = 8,
    TryAgainLater = 11,
    Internal = 999,
}

/// <summary>
/// A CNI error: printed on stdout as <c>{"cniVersion","code","msg","details"}</c> with a non-zero exit status.
/// </summary>
internal sealed class CniException : Exception
{
    public CniException(CniErrorCode code, string message, string details = "")
        : this((uint)code, message, details)
    {
    }

    public CniException(uint code, string message, string details = "")
        : base(message)
    {
        Code = code;
        Details = details;
    }

    public CniException()
        : this(CniErrorCode.Internal, "internal error")
    {
    }

    public CniException(string message)
        : this(CniErrorCode.Internal, message)
    {
    }

    public CniException(string message, Exception innerException)
        : base(message, innerException)
    {
        Code = (uint)CniErrorCode.Internal;
        Details = "";
    }

    public uint Code { get; }

    public string Details { get; }

    /// <summary>The error document the runtime reads from stdout.</summary>
    public string ToJson(string cniVersion)
    {
        var error = new GoStruct
        {
            { "cniVersion", cniVersion },
            { "code", Code },
            { "msg", Message },
        };
        if (Details.Length > 0)
        {
            error.Add("details", Details);
        }

        return GoJson.SerializeIndented(error);
    }
}
