// One request's place in the virtio-blk driver: the bytes the device reads and writes beside
// the data (the 16-byte header, the status byte), a bounce page for callers whose buffer the
// device cannot reach, the Event its caller sleeps on, and the request's state.
//
// A slot's life (all under the driver's lock, except the Event's own signalling):
//   free      in the driver's free list.
//   inFlight  `submit` wrote the header, set the status byte to 0xFF (no valid status: a
//             device that never writes it fails the check), reset the Event and published
//             the chain whose head is `head`.
//   done      `drain` found `head` in the used ring and decoded the status byte into
//             `outcome`, then signalled the Event.
//   free      `collect` copied a bounced read back to the caller and freed the slot.
// Nothing the device writes is kept here except the decoded status: `head` is the driver's
// own record of what it posted, so a used id is matched against it, never trusted.
//
// Rules for callers: the slot belongs to the driver; only the thread that submitted it calls
// `collect` for it (through its `BlockTicket`).
import Core

/// A submitted request, to hand back to `VirtIOBlockDriver.collect`.
public struct BlockTicket: Equatable, Sendable {
    /// Which slot the request occupies.
    public let slot: Int
}

final class BlockRequestSlot {
    enum State: Equatable {
        case free
        case inFlight
        case done
    }

    /// Guest-physical address of the header (16 bytes); the status byte follows it.
    let control: UInt64
    /// Guest-physical address of the slot's bounce page (`VirtIOBlockLimits.bounceBytes`).
    let bounce: UInt64
    /// Signalled when the request is done, or when the device fails.
    let completion = Event()

    var state = State.free
    /// The chain's head descriptor while in flight.
    var head: UInt16 = 0
    /// What the device said, once done.
    var outcome = BlockRequestStatus.ok
    /// Monotonic nanoseconds by which the device must have answered.
    var deadline: UInt64 = 0
    /// For a read through the bounce page: where `collect` copies the data (nil otherwise).
    var copyBack: UnsafeMutableRawPointer? = nil
    var copyCount = 0

    init(control: UInt64, bounce: UInt64) {
        self.control = control
        self.bounce = bounce
    }

    /// The status byte's address: right after the header.
    var statusAddress: UInt64 { control + UInt64(VirtIOBlock.headerSize) }
}

/// The driver's sizes and defaults (a generic class cannot hold static stored properties).
public enum VirtIOBlockLimits {
    /// The default timeout on one request: 30 s.
    public static let defaultTimeoutSeconds = 30
    /// The default number of requests in flight at once (one per calling thread).
    public static let defaultInFlight = 16
    /// Bytes of a slot's control area: header (16) + status (1), rounded up.
    static let controlBytes = 32
    /// Bytes of a slot's bounce page.
    static let bounceBytes = 4096
    /// The largest data segment of one request, whatever `size_max` allows: 1 MiB.
    static let largestRequest = 1 << 20

    /// `blk-timeout=SECONDS` (1-3600), or the default: how long one request may take before
    /// the device is given up.
    public static func timeoutSeconds(_ commandLine: KernelCommandLine) throws(KernelArgumentError) -> Int {
        try commandLine.number("blk-timeout", minimum: 1, maximum: 3600) ?? defaultTimeoutSeconds
    }
}
