// Little-endian field access for ext2's on-disk structures (every field is little-endian,
// at any alignment). Offsets are checked by the caller against the structure's size; these
// helpers trap on an out-of-range offset, so callers only pass constants or checked values.

extension UnsafeMutableRawBufferPointer {
    func le16(_ offset: Int) -> UInt16 { UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }
    func le32(_ offset: Int) -> UInt32 { UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
    func u8(_ offset: Int) -> UInt8 { self[offset] }
    func setLE16(_ offset: Int, _ value: UInt16) { storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt16.self) }
    func setLE32(_ offset: Int, _ value: UInt32) { storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self) }
    /// A sub-range as its own buffer.
    func slice(_ offset: Int, _ count: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: self[offset..<offset + count])
    }
}

/// The bytes of a static string (messages are bytes in the kernel, never `String`).
func ext2Bytes(_ text: StaticString) -> [UInt8] {
    Array(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
}
