// `fault`: reads an address no page table maps, so the CPU raises #PF (vector 14) and the
// kernel's exception report runs. The address lies far above any RAM a VM is given.
import Core

@_silgen_name("toro_service")
public func service() -> Service {
    Service(name: "fault",
            summary: "touches an unmapped address: the kernel reports the page fault and exits 3",
            devices: []) { Fault.run($0) }
}

enum Fault {
    static let unmappedAddress: UInt64 = 0x0000_0DEA_D000_0000

    static func run(_ context: ServiceContext) -> ExitStatus {
        context.ready()
        Log.write("fault: reading ")
        Log.hex(unmappedAddress)
        Log.put(10)
        let pointer = UnsafeMutablePointer<UInt64>(bitPattern: UInt(unmappedAddress))!
        let value = pointer.pointee   // does not return: the exception path exits
        Log.write("fault: read returned ")
        Log.hex(value)
        Log.write(" (the address is mapped: this is a bug)\n")
        return .serviceFailed
    }
}
