// libFuzzer target: the PCI walk (`PCIBusChip.scan`) and the virtio-pci capability reading
// (`VirtIOPCILayout.find`) against configuration spaces that say anything at all: the
// input fills up to four functions' 256-byte headers (placed on buses and slots the input
// picks) and their BARs' writable masks, over TestSupport's SimulatedPCI.
//
// Invariants (a violation traps, which libFuzzer reports):
//   * the walk ends, finds each present function once and no more than the machine holds;
//   * no function lists more than 48 capabilities, each at an offset >= 0x40, none twice;
//   * BAR indices are 0-5 and a 64-bit BAR never claims index 5;
//   * a layout `find` accepts has every structure inside a memory BAR of the function;
//   * the walk leaves every configuration dword as it found it, except the command
//     register, which it restores (BAR sizing writes and restores).
import FuzzSupport
import PC
import TestSupport
import VirtIOPCI

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var input = Cursor(bytes: UnsafeRawBufferPointer(start: data, count: size))
    let machine = SimulatedPCI()
    let count = Int(input.u8() % 4) + 1
    var placed = 0
    for _ in 0..<count {
        let bus = input.u8() % 3
        let device = input.u8() % 32
        let function = input.u8() % 8
        let key = SimulatedPCI.key(bus, device, function)
        guard machine.functions[key] == nil else { continue }
        var f = SimulatedPCI.Function()
        for i in 0..<64 { f.config[i] = input.u32() }
        for i in 0..<6 { f.writable[i] = input.u32() }
        machine.functions[key] = f
        placed += 1
    }
    let before = machine.functions
    let pci = PCIBusChip(ports: machine)
    let found = pci.scan()
    precondition(found.count <= placed, "the walk found more functions than there are")
    for (i, a) in found.enumerated() {
        for b in found[(i + 1)...] { precondition(a.address != b.address, "a function listed twice") }
        precondition(a.capabilities.count <= 48)
        var offsets: [UInt8] = []
        for capability in a.capabilities {
            precondition(capability.offset >= 0x40 && !offsets.contains(capability.offset), "a bad capability offset")
            offsets.append(capability.offset)
        }
        for bar in a.bars {
            precondition(bar.index >= 0 && bar.index < 6 && !(bar.kind == .memory64 && bar.index == 5))
        }
        if let layout = try? VirtIOPCILayout.find(a, pci: pci) {
            var regions = [layout.common, layout.notify, layout.isr]
            if let device = layout.device { regions.append(device) }
            for region in regions {
                guard let bar = a.bar(region.bar) else { preconditionFailure("a structure in a missing BAR") }
                precondition(bar.kind != .io && region.offset + region.length <= bar.size, "a structure outside its BAR")
            }
        }
    }
    for (key, f) in machine.functions {
        guard let old = before[key] else { preconditionFailure("a function appeared") }
        for i in 0..<64 where i != 1 && !(4...9).contains(i) {
            precondition(f.config[i] == old.config[i], "the walk changed configuration dword \(i)")
        }
        precondition(f.config[1] & 0xFFFF == old.config[1] & 0xFFFF, "the command register was not restored")
    }
    return 0
}

fuzzMain(fuzz)
