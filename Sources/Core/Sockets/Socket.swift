// Core's socket API: what a service sees of the network, whatever carries it.
//
// MicroVM implements it over virtio-vsock (VsockConnection, virtio 1.2 §5.10), Legacy will
// implement it over its own TCP/IP on virtio-net; services are written once against these
// protocols and never know which is below. Addresses are (cid, port) as in vsock; a TCP/IP
// provider maps its own addresses onto them.
//
// Rules for implementers and callers:
//   * The calls block the calling thread (how is the platform's business: threads and
//     events); nothing here mentions scheduling.
//   * `read` returns at least one byte, or 0 once the peer has finished sending and every
//     byte it sent has been read (end of stream); it throws when the connection broke.
//   * `write` takes at least one byte of a non-empty buffer (possibly fewer than all: flow
//     control), or throws. `writeAll` loops.
//   * `close` never fails and may be called more than once; later calls on the socket
//     throw `.closed`.
//   * Everything is class-bound (`AnyObject`) so Embedded Swift can hold `any StreamSocket`.

/// Why a socket call failed.
public enum SocketError: Error, Equatable, Sendable {
    /// Nobody listens at the address (vsock: the peer answered REQUEST with RST).
    case connectionRefused
    /// The peer aborted the connection (vsock: RST), or broke the protocol and we aborted it.
    case connectionReset
    /// The socket (or listener) was closed on this side, or its sending side is shut.
    case closed
    /// No buffer, port or connection slot is left for this request.
    case noSpace
    /// Another listener already owns that port.
    case addressInUse
    /// The device failed or misbehaved; the provider stopped using it.
    case deviceFailed
    /// The operation did not complete within the provider's time limit (for a connection:
    /// the peer was silent for the idle timeout; the connection has been reset).
    case timedOut
    /// A port, address or buffer the provider cannot use.
    case invalidArgument
}

/// A connected byte stream.
public protocol StreamSocket: AnyObject {
    /// Reads into `buffer`; returns the byte count, 0 meaning the peer closed (end of stream).
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int
    /// Writes a prefix of `bytes`; returns its length (>= 1 for a non-empty `bytes`).
    func write(_ bytes: UnsafeRawBufferPointer) throws(SocketError) -> Int
    /// Writes all of `bytes` (default below: `write` in a loop).
    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(SocketError)
    /// Writes all of `bytes`.
    func writeAll(_ bytes: [UInt8]) throws(SocketError)
    /// Writes the UTF-8 bytes of a static string (replies, banners), without `String`.
    func writeAll(_ text: StaticString) throws(SocketError)
    /// Ends the connection (orderly when possible). Never fails.
    func close()
}

/// A listening port that hands out the connections peers open to it.
public protocol Listener: AnyObject {
    /// Waits for the next connection.
    func accept() throws(SocketError) -> any StreamSocket
    /// Stops listening; waiting and later `accept` calls throw `.closed`.
    func close()
}

/// What a platform offers services: listening and connecting.
public protocol SocketProvider: AnyObject {
    /// Listens on `port`; `limits` bound its connections (ConnectionLimits.swift): beyond
    /// them a newcomer is reset at once, silent connections are closed after the idle
    /// timeout (their `read` or `write` throws `.timedOut`).
    func listen(port: UInt32, limits: ConnectionLimits) throws(SocketError) -> any Listener
    func connect(cid: UInt64, port: UInt32) throws(SocketError) -> any StreamSocket
}

// The default `writeAll`s. They are requirements of the protocol, not extension-only
// methods, so that a call on an `any StreamSocket` goes through the witness table, whose
// entries the conforming module specialises. An extension-only method is generic over
// `Self`, and Embedded Swift emits no unspecialised generic code: a service module calling
// it on an existential got `_swift_dead_method_stub`, which traps (#UD) at the first reply
// (the boot test ServiceImageBootTests checks that no image calls that stub).
extension StreamSocket {
    /// Writes all of `bytes`, looping over partial writes. A `write` that takes nothing
    /// breaks its contract; it is reported as `.closed` rather than spinning.
    public func writeAll(_ bytes: UnsafeRawBufferPointer) throws(SocketError) {
        var offset = 0
        while offset < bytes.count {
            let written = try write(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
            guard written > 0 && written <= bytes.count - offset else { throw .closed }
            offset += written
        }
    }

    /// Writes all of `bytes`.
    public func writeAll(_ bytes: [UInt8]) throws(SocketError) {
        // Array's closure-taking accessors throw untyped errors: carry ours out by hand.
        var failure: SocketError?
        bytes.withUnsafeBytes { raw in
            do throws(SocketError) { try writeAll(raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Writes the UTF-8 bytes of a static string (replies, banners), without `String`.
    public func writeAll(_ text: StaticString) throws(SocketError) {
        if text.hasPointerRepresentation {
            try writeAll(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        } else {
            // A one-scalar literal is stored as the scalar itself, not as bytes.
            try writeAll(text.withUTF8Buffer { [UInt8]($0) })
        }
    }
}
