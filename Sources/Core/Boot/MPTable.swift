// The Intel MultiProcessor Specification 1.4 table: which CPUs and I/O APICs exist.
//
// Both machines publish one: QEMU microvm's firmware (qboot) and SeaBIOS on pc. The MP
// floating pointer ("_MP_", 16 bytes, 16-byte aligned) is found by scanning the first KiB
// of the EBDA, the last KiB of base memory (0x9FC00-0xA0000) and the BIOS ROM
// (0xF0000-0xFFFFF) (MP spec 4). It points to the configuration table ("PCMP"), whose
// entries follow a 44-byte header. qboot writes an entry count of 0, so entries are walked
// by the table's byte length, not the count. Every length and checksum is checked.

public struct MPProcessor: Equatable {
    public var apicID: UInt8
    /// The bootstrap processor (the CPU running the kernel at boot).
    public var isBootstrap: Bool
    public init(apicID: UInt8, isBootstrap: Bool) { self.apicID = apicID; self.isBootstrap = isBootstrap }
}

public struct MPIOAPIC: Equatable {
    public var id: UInt8
    public var address: UInt32
}

public enum MPTableError: Error, Equatable {
    /// No floating pointer with a valid signature and checksum in the scanned areas.
    case notFound
    /// The configuration table is unreadable, has a bad signature, length or checksum.
    case badConfigurationTable
    /// An entry of unknown type or one running past the table's end.
    case badEntry(offset: Int)
}

public struct MPTable: Equatable {
    public var processors: [MPProcessor] = []
    public var ioAPICs: [MPIOAPIC] = []
    public var localAPICAddress: UInt32 = 0
    /// Where the floating pointer was found.
    public var floatingPointer: UInt64 = 0

    /// Only enabled processors are listed; the bootstrap processor first.
    public static func find(reader: some PhysicalReader) throws(MPTableError) -> MPTable {
        var areas: [(UInt64, Int)] = []
        if let bda = reader.bytes(at: 0x40E, count: 2) {
            let ebda = UInt64(bda.loadUnaligned(as: UInt16.self)) << 4
            if ebda >= 0x80000 && ebda < 0xA0000 { areas.append((ebda, 1024)) }
        }
        areas.append((0x9FC00, 1024))
        areas.append((0xF0000, 0x10000))
        for (start, length) in areas {
            var address = start
            while address + 16 <= start + UInt64(length) {
                if let candidate = reader.bytes(at: address, count: 16),
                   candidate[0] == 0x5F, candidate[1] == 0x4D, candidate[2] == 0x50, candidate[3] == 0x5F,
                   checksum(candidate) == 0 {
                    let table = UInt64(candidate.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                    var result = try parseConfiguration(at: table, reader: reader)
                    result.floatingPointer = address
                    return result
                }
                address += 16
            }
        }
        throw .notFound
    }

    /// Parses the configuration table ("PCMP") at `address`.
    public static func parseConfiguration(at address: UInt64, reader: some PhysicalReader) throws(MPTableError) -> MPTable {
        guard address != 0, let header = reader.bytes(at: address, count: 44),
              header[0] == 0x50, header[1] == 0x43, header[2] == 0x4D, header[3] == 0x50 else {
            throw .badConfigurationTable
        }
        let length = Int(header.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        guard length >= 44, let table = reader.bytes(at: address, count: length), checksum(table) == 0 else {
            throw .badConfigurationTable
        }
        var result = MPTable()
        result.localAPICAddress = header.loadUnaligned(fromByteOffset: 36, as: UInt32.self)
        var offset = 44
        while offset < length {
            let type = table[offset]
            let size = type == 0 ? 20 : 8
            guard type <= 4, offset + size <= length else { throw .badEntry(offset: offset) }
            switch type {
            case 0:
                let flags = table[offset + 3]
                if flags & 1 != 0 {
                    let cpu = MPProcessor(apicID: table[offset + 1], isBootstrap: flags & 2 != 0)
                    if cpu.isBootstrap { result.processors.insert(cpu, at: 0) } else { result.processors.append(cpu) }
                }
            case 2:
                if table[offset + 3] & 1 != 0 {
                    result.ioAPICs.append(MPIOAPIC(id: table[offset + 1],
                                                   address: table.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)))
                }
            default:
                break
            }
            offset += size
        }
        return result
    }

    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt8 {
        var sum: UInt8 = 0
        for byte in bytes { sum &+= byte }
        return sum
    }
}
