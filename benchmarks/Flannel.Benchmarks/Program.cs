using BenchmarkDotNet.Running;
using Flannel.Benchmarks.Kernel;

// Two modes:
//   encoder micro-benchmarks (BenchmarkDotNet; Release only):
//     dotnet run -c Release --project benchmarks/Flannel.Benchmarks -- --filter '*Encode*'
//   exact per-thread allocation count of every encoder benchmark (0 expected):
//     dotnet run -c Release --project benchmarks/Flannel.Benchmarks -- allocations
//   kernel programming throughput (root; creates and deletes its own namespaces):
//     dotnet run -c Release --project benchmarks/Flannel.Benchmarks -- kernel --sizes 1000,10000
if (args.Length > 0 && args[0] == "allocations")
{
    return Flannel.Benchmarks.Encoding.AllocationCheck.Run();
}

if (args.Length > 0 && args[0] == "kernel")
{
    return await KernelHarness.RunAsync(args[1..]);
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
