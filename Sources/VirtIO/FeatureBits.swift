// Feature bits (virtio 1.2 §2.2) and the reserved, device-independent ones (§6).
//
// Features are 64 bits, read and written as two 32-bit words through the transport
// (select 0: bits 0-31, select 1: bits 32-63). Bits 0-23 and 50-127 are device-specific,
// 24-41 are the reserved ones below (§2.2).
//
// Rules for callers:
//   * Ask for what the driver implements; `VirtIODevice.initialize` accepts the subset
//     the device offers (§2.2.1: "The driver MUST NOT accept a feature which the device
//     did not offer") and always demands VERSION_1 (this is a non-legacy driver).
//   * The Core rings implement none of `VirtIOFeature.unsupportedByCore`; `initialize`
//     never accepts those bits, even when asked to.

/// Device-independent feature bits (§6), as 64-bit masks.
public enum VirtIOFeature {
    /// VIRTIO_F_INDIRECT_DESC (28): descriptors may point to tables of descriptors.
    public static let indirectDescriptors: UInt64 = 1 << 28
    /// VIRTIO_F_EVENT_IDX (29): used_event/avail_event notification suppression.
    public static let eventIndex: UInt64 = 1 << 29
    /// VIRTIO_F_VERSION_1 (32): the device complies with virtio 1.x (not legacy).
    public static let version1: UInt64 = 1 << 32
    /// VIRTIO_F_ACCESS_PLATFORM (33): the device reaches memory through an IOMMU or
    /// similar; addresses are not plain guest-physical ones.
    public static let accessPlatform: UInt64 = 1 << 33
    /// VIRTIO_F_RING_PACKED (34): the packed virtqueue layout (§2.8).
    public static let ringPacked: UInt64 = 1 << 34
    /// VIRTIO_F_IN_ORDER (35): buffers are used in the order they were made available.
    public static let inOrder: UInt64 = 1 << 35
    /// VIRTIO_F_ORDER_PLATFORM (36): memory accesses need platform (not just SMP) barriers.
    public static let orderPlatform: UInt64 = 1 << 36
    /// VIRTIO_F_SR_IOV (37): single-root I/O virtualisation (PCI).
    public static let singleRootIOV: UInt64 = 1 << 37
    /// VIRTIO_F_NOTIFICATION_DATA (38): notifications carry extra data.
    public static let notificationData: UInt64 = 1 << 38
    /// VIRTIO_F_NOTIF_CONFIG_DATA (39): the driver uses a device-provided notification value.
    public static let notificationConfigData: UInt64 = 1 << 39
    /// VIRTIO_F_RING_RESET (40): individual queues can be reset.
    public static let ringReset: UInt64 = 1 << 40

    /// Features whose ring or notification formats the Core does not implement.
    public static let unsupportedByCore: UInt64 =
        indirectDescriptors | eventIndex | ringPacked | inOrder | notificationData | notificationConfigData
}
