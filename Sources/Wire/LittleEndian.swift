// Little-endian integers in byte buffers: the one reader and writer every format here uses.
//
// Every multi-byte field that crosses between guest and host is little-endian: the vsock
// header (virtio 1.2 §5.10.6), virtio structures (§1.4: le16, le32, le64), FUSE messages
// (fuse.h, packed little-endian), vhost-user payloads (vhost-user.rst "Message
// Specification"). Values are converted to and from host order here and nowhere else.
//
// Three shapes of the same thing:
//   * `LittleEndian.load`/`store`: one field at a fixed offset (header codecs);
//   * `LittleEndianReader`/`LittleEndianWriter`: a cursor through a packed structure
//     (FUSE bodies, directory records);
//   * `[UInt8].loadLE`/`appendLE`: fields of a message held in an array (vhost-user).
//
// Rules for callers: check the bounds first. Nothing here checks them beyond what the
// standard library asserts in debug builds: these sit under codecs that have already
// validated every length (STYLE principle 7 is the codec's job, not the cursor's).
// Unaligned offsets are fine (the formats are packed).

/// Single little-endian fields at byte offsets.
public enum LittleEndian {
    /// The `T`-sized little-endian integer at `offset` in `bytes`.
    @inlinable @inline(__always)
    public static func load<T: FixedWidthInteger>(_: T.Type, from bytes: UnsafeRawBufferPointer, at offset: Int) -> T {
        T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// Stores `value` little-endian at `offset` in `buffer`.
    @inlinable @inline(__always)
    public static func store<T: FixedWidthInteger>(_ value: T, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }
}

/// Sequential little-endian loads from `bytes`, starting at `offset`.
public struct LittleEndianReader {
    public let bytes: UnsafeRawBufferPointer
    /// The next byte to read.
    public var offset: Int

    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    @inlinable
    public mutating func load<T: FixedWidthInteger>(_: T.Type) -> T {
        defer { offset += MemoryLayout<T>.size }
        return LittleEndian.load(T.self, from: bytes, at: offset)
    }

    @inlinable public mutating func u8() -> UInt8 { load(UInt8.self) }
    @inlinable public mutating func u16() -> UInt16 { load(UInt16.self) }
    @inlinable public mutating func u32() -> UInt32 { load(UInt32.self) }
    @inlinable public mutating func u64() -> UInt64 { load(UInt64.self) }
    @inlinable public mutating func i32() -> Int32 { Int32(bitPattern: u32()) }
    @inlinable public mutating func skip(_ count: Int) { offset += count }
}

/// Sequential little-endian stores into `buffer`, starting at `offset`.
public struct LittleEndianWriter {
    public let buffer: UnsafeMutableRawBufferPointer
    /// The next byte to write.
    public var offset: Int

    @inlinable
    public init(_ buffer: UnsafeMutableRawBufferPointer, offset: Int = 0) {
        self.buffer = buffer
        self.offset = offset
    }

    @inlinable
    public mutating func store<T: FixedWidthInteger>(_ value: T) {
        LittleEndian.store(value, into: buffer, at: offset)
        offset += MemoryLayout<T>.size
    }

    @inlinable public mutating func u8(_ value: UInt8) { store(value) }
    @inlinable public mutating func u16(_ value: UInt16) { store(value) }
    @inlinable public mutating func u32(_ value: UInt32) { store(value) }
    @inlinable public mutating func u64(_ value: UInt64) { store(value) }
    @inlinable public mutating func i32(_ value: Int32) { u32(UInt32(bitPattern: value)) }

    /// `count` zero bytes (padding, reserved fields).
    @inlinable
    public mutating func zeros(_ count: Int) {
        for i in 0 ..< count { buffer[offset + i] = 0 }
        offset += count
    }

    /// `source`'s bytes as they are.
    @inlinable
    public mutating func bytes(_ source: UnsafeRawBufferPointer) {
        for i in 0 ..< source.count { buffer[offset + i] = source[i] }
        offset += source.count
    }
}

extension Array where Element == UInt8 {
    /// The `T`-sized little-endian integer at `offset`; the caller has checked the bounds.
    @inlinable
    public func loadLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        precondition(offset >= 0 && offset <= count - MemoryLayout<T>.size, "little-endian load out of bounds")
        return withUnsafeBytes { LittleEndian.load(T.self, from: $0, at: offset) }
    }

    /// Appends `value` little-endian.
    @inlinable
    public mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}
