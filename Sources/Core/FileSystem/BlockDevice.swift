// The contract between a disk driver (virtio-blk) and what stores files on it (the buffer
// cache, then ext2). Offsets count 512-byte sectors, virtio-blk's unit (virtio 1.2 §5.2.6),
// whatever the disk's physical block size.
//
// Rules for implementers:
//   * A transfer is whole sectors: `buffer.count` is a multiple of `sectorSize`, non-zero,
//     and `sector + buffer.count / sectorSize <= sectorCount`; anything else is
//     `outOfRange` and touches nothing.
//   * `write` on a read-only disk is `readOnly`; a request the device answered with an error
//     status is `io`; a device that broke its protocol (or went away) is `deviceFailed`,
//     and every later call throws it too.
//   * `write` returns once the device said the data was written; only `flush` makes it
//     durable when the device has a volatile write cache (VIRTIO_BLK_F_FLUSH). A device
//     without one writes through, and `flush` returns at once.
//   * Calls may block the calling thread (a kernel thread, never an interrupt handler) and
//     may come from several threads: the device serialises or overlaps them as it can.
// Rules for callers: a buffer must stay valid and unread until the call returns.

/// Why a disk transfer failed.
public enum BlockDeviceError: Error, Equatable, Sendable {
    /// Not whole sectors, or beyond the disk's end; nothing was transferred.
    case outOfRange
    /// A write to a read-only disk (VIRTIO_BLK_F_RO).
    case readOnly
    /// The device reported an error for this request (VIRTIO_BLK_S_IOERR), or the request is
    /// one it does not support (VIRTIO_BLK_S_UNSUPP).
    case io
    /// The device broke the virtqueue protocol or stopped answering; it is given up.
    case deviceFailed
}

public protocol BlockDevice: AnyObject {
    /// Bytes per addressable sector: 512.
    var sectorSize: Int { get }
    /// The disk's capacity in sectors.
    var sectorCount: UInt64 { get }
    /// Whether every write will be refused.
    var isReadOnly: Bool { get }
    /// Reads `buffer.count / sectorSize` sectors starting at `sector`.
    func read(sector: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockDeviceError)
    /// Writes `buffer.count / sectorSize` sectors starting at `sector`.
    func write(sector: UInt64, from buffer: UnsafeRawBufferPointer) throws(BlockDeviceError)
    /// Makes every completed write durable (a no-op without a write cache).
    func flush() throws(BlockDeviceError)
}
