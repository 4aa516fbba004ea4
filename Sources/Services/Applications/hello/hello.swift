// `hello`: Toro's HelloWorld. Prints the platform, the CPU count and the memory size.
import Core

@_silgen_name("toro_service")
public func service() -> Service {
    Service(name: "hello",
            summary: "prints a greeting with the platform, CPU count and memory size, then exits 0",
            devices: []) { Hello.run($0) }
}

enum Hello {
    static func run(_ context: ServiceContext) -> ExitStatus {
        context.ready()
        let cpus = context.cpuCount
        Log.write("Hello from Toro on ")
        Log.write(context.platformName)
        Log.write(": ")
        Log.decimal(cpus)
        Log.write(cpus == 1 ? " CPU, " : " CPUs, ")
        Log.decimal(context.memoryMap.installedMiB)
        Log.write(" MiB of memory\n")
        return .success
    }
}
