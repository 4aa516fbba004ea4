// Big-endian ("network order", RFC 1700) integers in byte buffers, for the Internet formats
// in this folder. Everything else in Wire is little-endian (LittleEndian.swift); the two are
// kept apart so a format reads in one byte order only.
//
// Rules for callers: check the bounds first, as for `LittleEndian`: nothing here checks
// them beyond what the standard library asserts in debug builds. Unaligned offsets are fine.

/// Single big-endian fields at byte offsets.
public enum BigEndian {
    /// The `T`-sized big-endian integer at `offset` in `bytes`.
    @inlinable @inline(__always)
    public static func load<T: FixedWidthInteger>(_: T.Type, from bytes: UnsafeRawBufferPointer, at offset: Int) -> T {
        T(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// Stores `value` big-endian at `offset` in `buffer`.
    @inlinable @inline(__always)
    public static func store<T: FixedWidthInteger>(_ value: T, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        buffer.storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
    }
}
