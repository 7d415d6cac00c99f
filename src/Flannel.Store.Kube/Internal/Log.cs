using Microsoft.Extensions.Logging;

namespace Flannel.Store.Kube.Internal;

/// <summary>Flannel.Store.Kube's log messages. Event ids 5000–5099 belong to this assembly.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 5000, Level = LogLevel.Information, Message = "Kubernetes subnet store for node {NodeName} (node name from {Source})")]
    public static partial void NodeNameResolved(ILogger logger, string nodeName, string source);

    [LoggerMessage(EventId = 5001, Level = LogLevel.Warning,
        Message = "Node {NodeName} has no podCIDR yet; waiting for one to be assigned (flannel would exit here). Is kube-controller-manager running with --allocate-node-cidrs=true and a --cluster-cidr inside the flannel Network?")]
    public static partial void WaitingForPodCidr(ILogger logger, string nodeName);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Information, Message = "Node {NodeName} has podCIDR {PodCidrs}")]
    public static partial void PodCidrAssigned(ILogger logger, string nodeName, object? podCidrs);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Warning, Message = "Node {NodeName} does not exist; waiting for it to be registered")]
    public static partial void WaitingForNode(ILogger logger, string nodeName);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Information, Message = "Patched node {NodeName} status with {Patch}")]
    public static partial void AnnotationsPatched(ILogger logger, string nodeName, string patch);

    [LoggerMessage(EventId = 5005, Level = LogLevel.Debug, Message = "Node {NodeName} annotations are already up to date")]
    public static partial void AnnotationsUpToDate(ILogger logger, string nodeName);

    [LoggerMessage(EventId = 5006, Level = LogLevel.Warning, Message = "Patching node {NodeName} failed (attempt {Attempt}), retrying in {Delay}: {Error}")]
    public static partial void PatchRetry(ILogger logger, string nodeName, int attempt, TimeSpan delay, string error);

    [LoggerMessage(EventId = 5007, Level = LogLevel.Information, Message = "Overriding public ip with '{Value}' from node annotation '{Annotation}'")]
    public static partial void PublicIPOverridden(ILogger logger, string value, string annotation);

    [LoggerMessage(EventId = 5008, Level = LogLevel.Information, Message = "Set NetworkUnavailable=False (FlannelIsUp) on node {NodeName}")]
    public static partial void NetworkAvailable(ILogger logger, string nodeName);

    [LoggerMessage(EventId = 5009, Level = LogLevel.Warning, Message = "Skipping node {NodeName}: {Problem}")]
    public static partial void NodeSkipped(ILogger logger, string nodeName, string problem);

    [LoggerMessage(EventId = 5010, Level = LogLevel.Information, Message = "Watch of {What} expired at resourceVersion {ResourceVersion} ({Message}); listing again")]
    public static partial void WatchExpired(ILogger logger, string what, string resourceVersion, string message);

    [LoggerMessage(EventId = 5011, Level = LogLevel.Warning, Message = "Watch of {What} failed, reconnecting in {Delay}: {Error}")]
    public static partial void WatchFailed(ILogger logger, string what, TimeSpan delay, string error);

    [LoggerMessage(EventId = 5012, Level = LogLevel.Warning, Message = "Listing {What} failed, retrying in {Delay}: {Error}")]
    public static partial void NodeListFailed(ILogger logger, string what, TimeSpan delay, string error);

    [LoggerMessage(EventId = 5013, Level = LogLevel.Warning, Message = "Node {NodeName} podCIDR changed from {Old} to {New}; handing out the new lease")]
    public static partial void OwnPodCidrChanged(ILogger logger, string nodeName, string old, string @new);

    [LoggerMessage(EventId = 5014, Level = LogLevel.Error, Message = "Node {NodeName} was deleted while flannel holds its lease; waiting for it to come back")]
    public static partial void OwnNodeDeleted(ILogger logger, string nodeName);

    [LoggerMessage(EventId = 5015, Level = LogLevel.Warning, Message = "Ignoring annotation {Annotation} on node {NodeName}: {Problem}")]
    public static partial void BadHintAnnotation(ILogger logger, string nodeName, string annotation, string problem);

    [LoggerMessage(EventId = 5016, Level = LogLevel.Information, Message = "Node {NodeName} carries earlier flannel attributes (backend {BackendType}); the backend may reuse them")]
    public static partial void PreviousAttributesFound(ILogger logger, string nodeName, string backendType);

    [LoggerMessage(EventId = 5017, Level = LogLevel.Debug, Message = "Watch of {What} ended by the server; resuming from resourceVersion {ResourceVersion}")]
    public static partial void WatchResumed(ILogger logger, string what, string resourceVersion);

    [LoggerMessage(EventId = 5018, Level = LogLevel.Error, Message = "Node {NodeName} cannot get a lease: {Problem}")]
    public static partial void OwnNodeMisconfigured(ILogger logger, string nodeName, string problem);

    [LoggerMessage(EventId = 5019, Level = LogLevel.Warning, Message = "Reading node {NodeName} for its earlier attributes failed: {Error}")]
    public static partial void HintsUnavailable(ILogger logger, string nodeName, string error);

    [LoggerMessage(EventId = 5020, Level = LogLevel.Information, Message = "Node {NodeName} no longer announces a flannel lease (kube-subnet-manager annotation removed)")]
    public static partial void LeaseRevoked(ILogger logger, string nodeName);

    [LoggerMessage(EventId = 5021, Level = LogLevel.Warning,
        Message = "Ignoring an event for node {OtherNode} on the watch of node {NodeName} (fieldSelector metadata.name={NodeName}): the server or a proxy did not apply the field selector. Further such events are ignored silently")]
    public static partial void ForeignNodeOnOwnWatch(ILogger logger, string nodeName, string otherNode);

    [LoggerMessage(EventId = 5022, Level = LogLevel.Information, Message = "The continue token of a paginated node list expired after {Nodes} nodes; listing all nodes at once instead")]
    public static partial void ListContinueExpired(ILogger logger, int nodes);
}
