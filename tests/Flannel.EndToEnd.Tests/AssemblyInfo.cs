// Each test builds a whole virtual cluster (namespaces, etcd, three flanneld processes): run them one at a time
// so two clusters never compete for the 2 CPU cores and the timings stay well inside the waits.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
