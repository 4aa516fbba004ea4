// The seam between Toro's IPv4 layer (NetInterface: Ethernet, ARP, IPv4, ICMP) and its
// transport (TCPStack: connections, listeners, the socket API). Both are pure: they never
// read a clock or block; the caller hands them the monotonic time (`now`, nanoseconds), so
// host tests drive them on a virtual clock and the kernel on the real one.
//
// Rules for both sides:
//   * Everything runs on one thread at a time (in the kernel: the network thread and the
//     service threads of CPU 0, cooperatively scheduled); nothing here locks.
//   * Received bytes are valid during the call only: copy what you keep.
//   * `sendIPv4` never blocks. It returns false when the datagram did not leave and was not
//     queued (transmit ring full, ARP resolution failed or its queue full): the transport
//     keeps its data and tries again (a retransmission, the next tick or acknowledgment).
import Core
import Wire

/// What the IPv4 layer offers its transport.
public protocol IPv4Output: AnyObject {
    /// This host's address.
    var localAddress: IPv4Address { get }
    /// The largest IPv4 payload one frame carries (1500 - 20 on Ethernet).
    var maximumPayload: Int { get }
    /// Sends one datagram of `payloadLength` bytes to `destination`; `fill` writes exactly
    /// that many bytes (the transport's header and data, checksum included) into the buffer
    /// it is given. True when the frame left or waits for ARP in a bounded queue.
    func sendIPv4(to destination: IPv4Address, protocol proto: IPProtocol, payloadLength: Int, now: UInt64,
                  fill: (UnsafeMutableRawBufferPointer) -> Void) -> Bool
}

/// What the IPv4 layer hands its transport.
public protocol IPv4Transport: AnyObject {
    /// One datagram for this host whose protocol is the transport's, its IPv4 header
    /// verified; `payload` is the IPv4 payload (the TCP segment, not yet checked).
    func receive(from source: IPv4Address, to destination: IPv4Address, payload: UnsafeRawBufferPointer, now: UInt64)
    /// Runs the transport's timers due at `now`.
    func tick(now: UInt64)
    /// The earliest time the transport wants `tick` (nil: no timer running).
    var nextDeadline: UInt64? { get }
}
