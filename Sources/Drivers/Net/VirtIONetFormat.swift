// virtio-net's numbers (virtio 1.2 §5.1): the device ID, the queues, the feature bits this
// driver knows, the configuration layout and the 12-byte header. No logic.
//
// Every frame on either queue is preceded by the header (§5.1.6; 12 bytes with VERSION_1,
// whether or not VIRTIO_NET_F_MRG_RXBUF is negotiated):
//   struct virtio_net_hdr {
//       u8   flags;         // NEEDS_CSUM 1, DATA_VALID 2, RSC_INFO 4: 0 here (no offloads)
//       u8   gso_type;      // NONE 0: always, since no GSO feature is negotiated
//       le16 hdr_len;
//       le16 gso_size;
//       le16 csum_start;
//       le16 csum_offset;
//       le16 num_buffers;   // §5.1.6.4: meaningful only with MRG_RXBUF; ignored here
//   };
// On transmit the driver writes it all zero (§5.1.6.2: no checksum or GSO asked for); on
// receive it is skipped, never trusted (without GUEST_CSUM the device sets no flag, §5.1.6.4).
//
// Rules for callers: every multi-byte field is little-endian; the MAC is 6 bytes in wire order.

/// virtio-net's constants (virtio 1.2 §5.1).
public enum VirtIONet {
    /// The device ID (§5.1.1; PCI device 0x1041 for a modern device).
    public static let deviceID: UInt32 = 1
    /// receiveq1 (§5.1.2, without VIRTIO_NET_F_MQ).
    public static let receiveQueue: UInt16 = 0
    /// transmitq1.
    public static let transmitQueue: UInt16 = 1

    // MARK: feature bits (§5.1.3), as 64-bit masks

    /// VIRTIO_NET_F_MAC (5): the device has a MAC address in the configuration.
    public static let featureMAC: UInt64 = 1 << 5
    /// VIRTIO_NET_F_MRG_RXBUF (15): never accepted (one buffer per frame here).
    public static let featureMergeableBuffers: UInt64 = 1 << 15
    /// VIRTIO_NET_F_STATUS (16): the configuration has a link status field.
    public static let featureStatus: UInt64 = 1 << 16
    /// The features this driver accepts when offered (VERSION_1 is always required). No
    /// checksum or segmentation offload, no control queue, no multiqueue.
    public static let wantedFeatures: UInt64 = featureMAC | featureStatus

    // MARK: configuration (§5.1.4)

    /// `u8 mac[6]`, valid with VIRTIO_NET_F_MAC.
    public static let configMAC = 0
    /// `le16 status`, valid with VIRTIO_NET_F_STATUS.
    public static let configStatus = 6
    /// VIRTIO_NET_S_LINK_UP in `status`.
    public static let statusLinkUp: UInt16 = 1

    // MARK: frames

    /// `sizeof(struct virtio_net_hdr)` with VERSION_1 (§5.1.6).
    public static let headerSize = 12
    /// The largest Ethernet frame without its FCS and without a VLAN tag: 14 + 1500.
    public static let maximumFrame = 1514
    /// The smallest frame handed up: an Ethernet header (shorter ones are dropped).
    public static let minimumFrame = 14
    /// One buffer's bytes: header and the largest frame (a receive buffer's device-writable
    /// length, a transmit buffer's most). §5.1.6.3.1, without MRG_RXBUF or GUEST_TSO/UFO:
    /// "the driver SHOULD populate the receive queue(s) with buffers of at least 1526 bytes".
    public static let bufferBytes = headerSize + maximumFrame
}

/// The driver's sizes (a generic class cannot hold static stored properties).
public enum VirtIONetLimits {
    /// Receive buffers posted at most (the ring may allow fewer).
    public static let receiveBuffers = 64
    /// Transmit buffers in the pool at most (the ring may allow fewer).
    public static let transmitBuffers = 32
    /// The space each buffer takes in the driver's pages: two buffers a page.
    static let bufferStride = 2048
    /// The MAC used when the device offers none (§5.1.5: the driver SHOULD make one up):
    /// locally administered, unicast.
    public static let fallbackMAC: [UInt8] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01]
}
