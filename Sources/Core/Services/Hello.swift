// `hello`: Toro's HelloWorld. Prints the platform, the CPU count and the memory size.
enum Hello {
    static func run(_ context: ServiceContext) -> ExitStatus {
        context.ready()
        let cpus = context.platform.cpuCount
        Log.write("Hello from Toro on ")
        Log.write(context.platform.name)
        Log.write(": ")
        Log.decimal(cpus)
        Log.write(cpus == 1 ? " CPU, " : " CPUs, ")
        Log.decimal(context.memoryMap.installedMiB)
        Log.write(" MiB of memory\n")
        return .success
    }
}
