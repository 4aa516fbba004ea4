// Little-endian field access on byte arrays: every vhost-user payload and every virtio
// structure is little-endian (vhost-user.rst "Message Specification"; virtio 1.2 §1.4).

extension Array where Element == UInt8 {
    /// The `T`-sized little-endian integer at `offset`; the caller has checked the bounds.
    func loadLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var value: T = 0
        for index in 0..<MemoryLayout<T>.size {
            value |= T(truncatingIfNeeded: self[offset + index]) << (8 * index)
        }
        return value
    }

    /// Appends `value` little-endian.
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        for index in 0..<MemoryLayout<T>.size {
            append(UInt8(truncatingIfNeeded: value >> (8 * index)))
        }
    }
}
