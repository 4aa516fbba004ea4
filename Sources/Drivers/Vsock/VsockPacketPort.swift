// The seam between the vsock socket layer (VsockSockets, VsockStream, VsockListener) and
// the device driver that moves packets (VsockDriver): what the sockets need of a driver,
// whatever its transport and memory. One class-bound protocol keeps the socket classes
// free of the driver's generic parameters.
//
// Rules for conformers: CPU 0 only. `deliver` is called on the driver thread for each
// well-formed packet addressed to `guestCID`; `onFailure` once, when the device fails;
// `send` blocks the caller while every transmit buffer is in flight and returns false once
// the device has failed.
import Wire

protocol VsockPacketPort: AnyObject {
    /// The guest's context id (§5.10.4).
    var guestCID: UInt64 { get }
    /// True once the device broke the protocol; it never clears.
    var failed: Bool { get }
    /// Receives every well-formed packet: header and payload (valid during the call).
    var deliver: ((VsockHeader, UnsafeRawBufferPointer) -> Void)? { get set }
    /// Called once when the device fails.
    var onFailure: (() -> Void)? { get set }
    /// Queues one packet; `restamp` is the connection whose current credit it carries.
    func send(_ header: VsockHeader, payload: UnsafeRawBufferPointer, restamp: VsockConnection?) -> Bool
}

extension VsockPacketPort {
    /// A control packet (no payload).
    func send(_ header: VsockHeader, restamp: VsockConnection? = nil) -> Bool {
        send(header, payload: UnsafeRawBufferPointer(start: nil, count: 0), restamp: restamp)
    }
}
