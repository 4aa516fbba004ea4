// What a virtio transport provides (virtio-mmio §4.2, virtio-pci §4.1): a handful of
// register-level primitives. Bring-up and feature negotiation are written once on top
// (DeviceBringUp.swift), and drivers are generic over the transport, so they never see a
// register offset and the tests drive them through a recording fake.
//
// Rules for conformers:
//   * A transport is a view of one device's registers: methods are non-mutating and a
//     copy names the same device (reference semantics).
//   * Queue selection is the transport's business: `setUpQueue(3, ...)` selects queue 3
//     and programs it (mmio: QueueSel, QueueNum, QueueDesc/Driver/Device, §4.2.3.2).
//   * Addresses are guest-physical; values are passed in host order (the transport does
//     whatever byte order its bus needs; mmio and pci 1.x registers are little-endian).
//   * Modern (virtio 1.x) devices only; a legacy interface is refused by the transport
//     before a driver sees it.
//
// Rules for callers: use it through `VirtIODevice` for status and features; program
// queues between `initialize` and `finish` (§3.1.1 step 7).

/// Register-level access to one virtio device. Use as a generic constraint.
public protocol VirtIOTransport {
    /// Device feature bits `32·select ..< 32·select + 32` (§2.2; select 0 or 1 here).
    func deviceFeatures(select: UInt32) -> UInt32
    /// Writes driver (accepted) feature bits `32·select ..< 32·select + 32`.
    func setDriverFeatures(select: UInt32, value: UInt32)
    /// The device status field (§2.1). Writing 0 resets the device.
    var status: DeviceStatus { get nonmutating set }
    /// The largest size the device supports for queue `index`; 0 when the queue does
    /// not exist (mmio QueueNumMax, §4.2.2).
    func queueMax(_ index: UInt16) -> UInt16
    /// Programs queue `index`: its size and the guest-physical addresses of its
    /// descriptor table, available ring (driver area) and used ring (device area).
    func setUpQueue(_ index: UInt16, size: UInt16, descriptor: UInt64, avail: UInt64, used: UInt64)
    /// Lets the device use queue `index` (mmio QueueReady = 1).
    func enableQueue(_ index: UInt16)
    /// Available-buffer notification for queue `index` (mmio QueueNotify, §4.2.3.3).
    func notify(_ index: UInt16)
    /// Pending interrupt causes (`VirtIOInterrupt` bits; mmio InterruptStatus).
    func interruptStatus() -> UInt32
    /// Acknowledges the causes in `bits` (mmio InterruptACK).
    func acknowledge(_ bits: UInt32)
    /// The configuration generation counter (§2.5: changes when the device changes its
    /// configuration space; mmio ConfigGeneration).
    func configGeneration() -> UInt32
    /// One byte of the device-specific configuration space.
    func configRead(_ offset: Int) -> UInt8
}

/// Interrupt causes in `interruptStatus` (mmio §4.2.2, InterruptStatus; pci ISR §4.1.4.5).
public enum VirtIOInterrupt {
    /// The device used a buffer in at least one queue.
    public static let usedBuffer: UInt32 = 1 << 0
    /// The device configuration space changed.
    public static let configurationChange: UInt32 = 1 << 1
}

extension VirtIOTransport {
    /// A little-endian configuration field of `T`'s width at `offset`, read consistently:
    /// §2.5.1, "Drivers MUST NOT assume reads from fields greater than 32 bits wide are
    /// atomic, nor are reads from multiple fields", so the bytes are read between two
    /// equal generation counts. Nil when the generation never settles in `attempts` tries.
    public func configValue<T: FixedWidthInteger>(_ type: T.Type, at offset: Int, attempts: Int = 16) -> T? {
        var attempt = 0
        while attempt < attempts {
            attempt += 1
            let before = configGeneration()
            var value: T = 0
            // Assembled here rather than with Wire's LittleEndian: VirtIO imports nothing
            // (DESIGN.md "Layout"), and the bytes come one register read at a time, not
            // from a buffer.
            for i in 0 ..< MemoryLayout<T>.size {
                value |= T(truncatingIfNeeded: configRead(offset + i)) << (8 * i)
            }
            if configGeneration() == before { return value }
        }
        return nil
    }

    /// A little-endian `le16` configuration field (see `configValue`).
    public func configRead16(_ offset: Int) -> UInt16? { configValue(UInt16.self, at: offset) }
    /// A little-endian `le32` configuration field (see `configValue`).
    public func configRead32(_ offset: Int) -> UInt32? { configValue(UInt32.self, at: offset) }
    /// A little-endian `le64` configuration field, e.g. vsock's guest_cid (see `configValue`).
    public func configRead64(_ offset: Int) -> UInt64? { configValue(UInt64.self, at: offset) }
}
