// CRC-32 as IEEE 802.3, zlib's `crc32()` and PNG use it: the reflected polynomial
// 0xEDB88320, initial value 0xFFFFFFFF, final complement. `CRC32.checksum("123456789")` is
// 0xCBF43926 (the catalogue's check value).
//
// Table-driven, slicing-by-8 (eight 256-entry tables, 8 KiB, built on first use): under
// TCG the kernel checksums 64 MiB files for `fs-manifest`, and eight bytes per step is
// several times faster than the classic byte-at-a-time loop. The result is identical.
//
// Rules for callers: feed the bytes in order with `update` (any split gives the same
// value), read `value` at any point. A value type; no shared state but the read-only table.

public struct CRC32: Sendable {
    /// The running register, complemented (so `value` is the CRC of the bytes so far).
    private var register: UInt32 = 0xFFFF_FFFF

    public init() {}

    /// The CRC of everything fed so far (0 for nothing).
    public var value: UInt32 { ~register }

    /// The CRC of `bytes` in one go.
    public static func checksum<C: Collection<UInt8>>(_ bytes: C) -> UInt32 {
        var crc = CRC32()
        crc.update(bytes)
        return crc.value
    }

    /// Feeds a collection of bytes (arrays and slices go through the fast path).
    public mutating func update<C: Collection<UInt8>>(_ bytes: C) {
        if bytes.withContiguousStorageIfAvailable({ update(UnsafeRawBufferPointer($0)) }) != nil { return }
        let table = CRC32.tables
        for byte in bytes {
            register = table[Int(UInt8(truncatingIfNeeded: register) ^ byte)] ^ (register >> 8)
        }
    }

    /// Feeds raw bytes: eight at a time, then the tail one at a time.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        let table = CRC32.tables
        var crc = register
        var index = 0
        let count = bytes.count
        table.withUnsafeBufferPointer { t in
            while count - index >= 8 {
                let low = crc ^ LittleEndian.load(UInt32.self, from: bytes, at: index)
                let high = LittleEndian.load(UInt32.self, from: bytes, at: index + 4)
                crc = t[7 * 256 + Int(low & 0xFF)] ^ t[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((low >> 16) & 0xFF)] ^ t[4 * 256 + Int(low >> 24)]
                    ^ t[3 * 256 + Int(high & 0xFF)] ^ t[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((high >> 16) & 0xFF)] ^ t[Int(high >> 24)]
                index += 8
            }
            while index < count {
                crc = t[Int(UInt8(truncatingIfNeeded: crc) ^ bytes[index])] ^ (crc >> 8)
                index += 1
            }
        }
        register = crc
    }

    /// Table k (entries k*256 ..< (k+1)*256) advances a byte through k further zero bytes;
    /// table 0 is the classic byte-at-a-time table.
    static let tables: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 8 * 256)
        for n in 0..<256 {
            var c = UInt32(n)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            table[n] = c
        }
        for n in 0..<256 {
            var c = table[n]
            for k in 1..<8 {
                c = table[Int(c & 0xFF)] ^ (c >> 8)
                table[k * 256 + n] = c
            }
        }
        return table
    }()
}
