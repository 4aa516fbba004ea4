// Virtio device IDs (virtio 1.2 §5, "Device Types"): what a transport reports in its
// DeviceID register (mmio §4.2.2) or PCI device ID (0x1040 + id, §4.1.2), and what a
// platform's device list matches to pick a driver.

/// The device types Toro has drivers or back-ends for.
public enum VirtIODeviceID {
    /// virtio-net (§5.1).
    public static let network: UInt32 = 1
    /// virtio-blk (§5.2).
    public static let block: UInt32 = 2
    /// virtio-vsock (§5.10).
    public static let socket: UInt32 = 19
    /// virtio-fs (§5.11).
    public static let fileSystem: UInt32 = 26
}
