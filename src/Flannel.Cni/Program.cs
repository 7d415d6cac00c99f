// The flannel CNI plugin is not implemented yet (issue: the agent, the reference host and the CNI plugin).
// Until then it answers every command with a CNI error, so a runtime never mistakes it for a working plugin.
Console.Out.Write("{\"cniVersion\":\"1.0.0\",\"code\":999,\"msg\":\"the Flannel.NET CNI plugin is not implemented yet\"}");
return 1;
