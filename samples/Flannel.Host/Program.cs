// The reference host (flanneld) is not implemented yet (issue: the agent, the reference host and the CNI plugin).
await Console.Error.WriteLineAsync("flanneld: the Flannel.NET reference host is not implemented yet").ConfigureAwait(false);
return 1;
