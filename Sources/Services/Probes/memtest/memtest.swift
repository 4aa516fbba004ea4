// `memtest`: proves the allocators reach every RAM range of the memory map.
//
// It takes pages from the page-frame allocator until none are left, in runs of up to
// 4096 pages (16 MiB), writes and reads back a pattern at both ends of each run, counts the pages
// that came from each usable range, then gives everything back and checks the free count
// returns to where it was. Output (one line each, no timestamps):
//   memtest: range 0x<start>-0x<end> pages <usable> allocated <n>
//   memtest: highest 0x<address of the last byte handed out>
//   memtest: ok | memtest: FAILED <reason>
import Core

@_silgen_name("toro_service")
public func service() -> Service {
    Service(name: "memtest",
            summary: "allocates all memory and proves every RAM range is used, then exits 0",
            devices: []) { MemTest.run($0) }
}

enum MemTest {
    static let runPages = 4096

    static func run(_ context: ServiceContext) -> ExitStatus {
        context.ready()
        let ranges = context.usableRanges
        var counts = [Int](repeating: 0, count: ranges.count)
        var taken: [(UInt64, Int)] = []
        // Reserved up front: the heap itself cannot grow once every page is taken.
        taken.reserveCapacity(KernelMemory.freePages / runPages + 1024)
        var highest: UInt64 = 0
        let freeBefore = KernelMemory.freePages
        var failure: StaticString? = nil
        var size = runPages
        while size > 0 {
            guard let address = KernelMemory.allocatePages(size) else { size /= 2; continue }
            taken.append((address, size))
            let end = address + UInt64(size) * 4096
            let first = UnsafeMutablePointer<UInt64>(bitPattern: UInt(address))!
            let last = UnsafeMutablePointer<UInt64>(bitPattern: UInt(end - 8))!
            first.pointee = address ^ 0x5A5A_5A5A_5A5A_5A5A
            last.pointee = end ^ 0xA5A5_A5A5_A5A5_A5A5
            if first.pointee != address ^ 0x5A5A_5A5A_5A5A_5A5A || last.pointee != end ^ 0xA5A5_A5A5_A5A5_A5A5 {
                failure = "pattern did not read back"
            }
            var counted = false
            if !context.kernelImage.contains(address) { highest = max(highest, end - 1) }
            for (index, range) in ranges.enumerated() where range.contains(address) {
                if end <= range.end { counts[index] += size; counted = true }
            }
            // The early heap (in the kernel's .bss) is the one source outside the map.
            if !counted && !context.kernelImage.contains(address) { failure = "a run lies outside every usable range" }
        }
        for (address, pages) in taken { KernelMemory.freePages(address, pages) }
        if KernelMemory.freePages != freeBefore { failure = "free page count did not return to its start" }

        for (index, range) in ranges.enumerated() {
            Log.write("memtest: range ")
            Log.hex(range.start)
            Log.write("-")
            Log.hex(range.end)
            Log.write(" pages ")
            Log.decimal(range.length / 4096)
            Log.write(" allocated ")
            Log.decimal(counts[index])
            Log.put(10)
        }
        Log.write("memtest: highest ")
        Log.hex(highest)
        Log.put(10)
        if let failure {
            Log.write("memtest: FAILED ")
            Log.write(failure)
            Log.put(10)
            return .serviceFailed
        }
        Log.write("memtest: ok\n")
        return .success
    }
}
