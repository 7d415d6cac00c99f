using BenchmarkDotNet.Running;

// Run from a Release build, e.g.:
//   dotnet run -c Release --project benchmarks/Flannel.Benchmarks -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
