// Reading a fuzz input as fields: little-endian integers, byte runs, a copy into a buffer.
// Past the end every read gives zeros (or nothing), so a target never has to check the
// input's length. Part of FuzzSupport, which every fuzz target imports.

public struct Cursor {
    public let bytes: UnsafeRawBufferPointer
    public var offset = 0

    public init(bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var isEmpty: Bool { offset >= bytes.count }

    public mutating func u8() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }
    public mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }
    public mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    public mutating func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }

    /// Up to `count` bytes (fewer at the end of the input).
    public mutating func take(_ count: Int) -> [UInt8] {
        let end = min(bytes.count, offset + max(0, count))
        defer { offset = max(offset, end) }
        return offset < end ? Array(bytes[offset ..< end]) : []
    }

    /// Copies up to `target.count` bytes into `target`, zero-filling the rest; returns how
    /// many came from the input.
    public mutating func fill(_ target: UnsafeMutableRawBufferPointer) -> Int {
        let count = min(target.count, bytes.count - min(offset, bytes.count))
        for i in 0 ..< target.count { target[i] = i < count ? bytes[offset + i] : 0 }
        offset += count
        return count
    }
}
