// Reads just enough of a kernel's ELF64 file to know how much memory it needs: the end
// of its highest PT_LOAD segment (physical address + size in memory, which includes
// .bss). `--memory` must leave at least 1 MiB above that for page tables, the heap and
// the services, so the minimum is ceil((end + 1 MiB) / 1 MiB), and never below 2 MiB.
//
// The bytes come from a file the user may have replaced; every offset is checked and a
// malformed file yields nil, never a trap.

#if canImport(Glibc)
import Glibc
#endif
import Foundation

public enum ELFImage {
    static let mebibyte: UInt64 = 1 << 20
    /// The floor when no image exists yet.
    public static let defaultMinimumMiB = 2

    /// The highest `p_paddr + p_memsz` of any PT_LOAD segment, or nil if `bytes` is not a
    /// little-endian ELF64 file with readable program headers.
    public static func loadEnd(_ bytes: [UInt8]) -> UInt64? {
        guard bytes.count >= 64, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46,
              bytes[4] == 2, bytes[5] == 1 else { return nil }        // ELFCLASS64, ELFDATA2LSB
        func read(_ offset: UInt64, _ size: Int) -> UInt64? {
            guard offset <= UInt64(bytes.count), UInt64(bytes.count) - offset >= UInt64(size) else { return nil }
            var value: UInt64 = 0
            for i in 0..<size { value |= UInt64(bytes[Int(offset) + i]) << (8 * UInt64(i)) }
            return value
        }
        guard let phoff = read(0x20, 8), let phentsize = read(0x36, 2), let phnum = read(0x38, 2),
              phentsize >= 56 else { return nil }
        var end: UInt64? = nil
        for index in 0..<phnum {
            let (offset, overflow) = phoff.addingReportingOverflow(index * phentsize)
            guard !overflow, let type = read(offset, 4), let paddr = read(offset + 0x18, 8),
                  let memsz = read(offset + 0x28, 8) else { return nil }
            guard type == 1 else { continue }                        // PT_LOAD
            let (segmentEnd, overflowEnd) = paddr.addingReportingOverflow(memsz)
            guard !overflowEnd else { return nil }
            end = max(end ?? 0, segmentEnd)
        }
        return end
    }

    /// The smallest `--memory` (MiB) the kernel in `bytes` can run with, or nil when the
    /// bytes are not a usable ELF image.
    public static func minimumMemoryMiB(_ bytes: [UInt8]) -> Int? {
        guard let end = loadEnd(bytes), end <= UInt64.max - 2 * mebibyte else { return nil }
        let needed = (end + mebibyte + mebibyte - 1) / mebibyte
        return max(defaultMinimumMiB, Int(clamping: needed))
    }

    /// `minimumMemoryMiB` of the file at `path`; the default floor when there is no file
    /// (nothing has been built yet) or it cannot be read as ELF.
    public static func minimumMemoryMiB(path: String) -> Int {
        guard let data = FileManager.default.contents(atPath: path) else { return defaultMinimumMiB }
        return minimumMemoryMiB([UInt8](data)) ?? defaultMinimumMiB
    }
}
