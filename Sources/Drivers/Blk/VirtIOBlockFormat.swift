// virtio-blk's numbers (virtio 1.2 §5.2): the device ID, the feature bits this driver knows,
// the configuration layout, the request header and the status byte. No logic but the
// decoding of a status byte the device wrote.
//
// A request is one descriptor chain (§5.2.6):
//   struct virtio_blk_req {
//       le32 type;        // IN 0, OUT 1, FLUSH 4, GET_ID 8      } device-readable,
//       le32 reserved;    // 0                                    } 16 bytes
//       le64 sector;      // 512-byte units; 0 for FLUSH, GET_ID  }
//       u8   data[];      // IN, GET_ID: device-writable; OUT: device-readable; FLUSH: none
//       u8   status;      // device-writable: OK 0, IOERR 1, UNSUPP 2
//   };
//
// Rules for callers: every multi-byte field is little-endian; `GuestMemory.store` converts.

/// virtio-blk's constants (virtio 1.2 §5.2).
public enum VirtIOBlock {
    /// The device ID (§5.2.1; PCI device 0x1042 for a modern device).
    public static let deviceID: UInt32 = 2
    /// The one request queue (§5.2.2, without VIRTIO_BLK_F_MQ).
    public static let requestQueue: UInt16 = 0
    /// The unit of `sector` and of capacity, whatever the disk's block size (§5.2.6).
    public static let sectorSize = 512

    // MARK: feature bits (§5.2.3), as 64-bit masks

    /// VIRTIO_BLK_F_SIZE_MAX (1): `size_max` bounds one segment's length.
    public static let featureSizeMax: UInt64 = 1 << 1
    /// VIRTIO_BLK_F_SEG_MAX (2): `seg_max` bounds the data segments of one request.
    public static let featureSegmentMax: UInt64 = 1 << 2
    /// VIRTIO_BLK_F_RO (5): the device is read-only; writes are refused (§5.2.6.2).
    public static let featureReadOnly: UInt64 = 1 << 5
    /// VIRTIO_BLK_F_BLK_SIZE (6): `blk_size` gives the optimal block size.
    public static let featureBlockSize: UInt64 = 1 << 6
    /// VIRTIO_BLK_F_FLUSH (9): the device has a write cache; FLUSH makes writes durable.
    public static let featureFlush: UInt64 = 1 << 9
    /// The features this driver accepts when offered (VERSION_1 is always required).
    public static let wantedFeatures: UInt64 =
        featureSizeMax | featureSegmentMax | featureReadOnly | featureBlockSize | featureFlush

    // MARK: configuration layout (§5.2.4)

    /// le64 capacity, in 512-byte sectors.
    public static let configCapacity = 0
    /// le32 size_max (with SIZE_MAX).
    public static let configSizeMax = 8
    /// le32 seg_max (with SEG_MAX).
    public static let configSegmentMax = 12
    /// le32 blk_size (with BLK_SIZE).
    public static let configBlockSize = 20

    // MARK: requests (§5.2.6)

    /// Bytes of the header that starts every request.
    public static let headerSize = 16
    /// Bytes of a GET_ID answer: the serial, NUL-padded, not NUL-terminated when 20 long.
    public static let idSize = 20
}

/// The request types this driver sends (§5.2.6: VIRTIO_BLK_T_*).
public enum BlockRequestType: UInt32, Sendable {
    /// VIRTIO_BLK_T_IN: read sectors into the device-writable data.
    case read = 0
    /// VIRTIO_BLK_T_OUT: write the device-readable data to sectors.
    case write = 1
    /// VIRTIO_BLK_T_FLUSH: make completed writes durable; no data.
    case flush = 4
    /// VIRTIO_BLK_T_GET_ID: the device's serial, 20 device-writable bytes.
    case getID = 8
}

/// What the status byte of a used request says (§5.2.6).
public enum BlockRequestStatus: Equatable, Sendable {
    /// VIRTIO_BLK_S_OK.
    case ok
    /// VIRTIO_BLK_S_IOERR or VIRTIO_BLK_S_UNSUPP: the request failed; the device is fine.
    case failed
    /// Any other value: the device broke the protocol.
    case invalid(UInt8)

    public init(byte: UInt8) {
        switch byte {
        case 0: self = .ok
        case 1, 2: self = .failed
        default: self = .invalid(byte)
        }
    }
}
