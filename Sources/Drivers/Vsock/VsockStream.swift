// One connected vsock stream as services see it (Core's StreamSocket), over the
// VsockConnection state machine.
//
// Every wait on the peer is bounded: a `read` waiting for bytes and a `write` waiting for
// credit give up once nothing has moved on the connection for `idleTimeout` (the
// listener's, ConnectionLimits.swift; enforced by the sockets' sweeper within a second):
// the connection is reset and the call throws `.timedOut`. "Moved" is any packet from the peer, or bytes the service read or wrote.
// A listener at its limit may also evict a connection silent for a while (`evict`): its
// calls then throw `.timedOut` too.
//
// Rules: CPU 0 only, with the driver (VsockSockets.swift); one service thread per stream.
import Core
import Drivers

final class VsockStream: StreamSocket, IdleTracked {
    let connection: VsockConnection
    unowned(unsafe) let sockets: VsockSockets
    /// The listener whose table holds this stream until it is closed or evicted (nil for
    /// connections we opened). Cleared when the table lets go, which breaks the cycle.
    var listener: VsockListener?
    let changed = Event()
    var closedBySelf = false
    /// Closed by us for silence (idle timeout or eviction): calls throw `.timedOut`.
    var closedForSilence = false
    /// Evicted by its listener to admit a newcomer (it left the listener's table then).
    var evicted = false
    /// Monotonic nanoseconds of the last packet from the peer or bytes moved by the service.
    var lastActivity: UInt64
    /// 0: never time out.
    let idleTimeout: UInt64
    /// The service is blocked in `read` or `write` until the peer acts (sends, or takes
    /// what we sent): only then can the connection be silent and evicted.
    var awaitingPeer = false
    /// Set by the driver thread when the peer's first data packet arrives.
    var peerHasSpoken = false
    var isAwaitingPeer: Bool { awaitingPeer && connection.readable == 0 }

    init(connection: VsockConnection, sockets: VsockSockets, idleTimeout: UInt64) {
        self.connection = connection
        self.sockets = sockets
        self.idleTimeout = idleTimeout
        lastActivity = Clock.monotonicNanoseconds()
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int {
        while true {
            if closedBySelf { throw .closed }
            if connection.readable > 0 {
                let (count, actions) = connection.read(into: buffer)
                sockets.send(actions, payload: nil, of: connection)
                lastActivity = Clock.monotonicNanoseconds()
                return count
            }
            if closedForSilence { throw .timedOut }
            if connection.isReceiveFinished {
                if isBroken { throw .connectionReset }
                return 0
            }
            if sockets.driver.failed { throw .deviceFailed }
            changed.reset()
            try waitForPeer()
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(SocketError) -> Int {
        while true {
            if closedBySelf { throw .closed }
            if closedForSilence { throw .timedOut }
            if sockets.driver.failed { throw .deviceFailed }
            guard connection.isSendOpen else { throw isBroken ? .connectionReset : .closed }
            let (accepted, actions) = connection.write(bytes)
            sockets.send(actions, payload: bytes, of: connection)
            if accepted > 0 || bytes.isEmpty {
                if accepted > 0 { lastActivity = Clock.monotonicNanoseconds() }
                return accepted
            }
            changed.reset()
            try waitForPeer()
        }
    }

    func close() {
        guard !closedBySelf else { return }
        closedBySelf = true
        sockets.send(connection.close(), payload: nil, of: connection)
        sockets.forget(self)
    }

    /// Waits for the next change. The idle timeout is not a timer per wait (a timer queue
    /// insert and removal for every request cost kv 15% at 50 connections): the sockets'
    /// sweeper (`VsockSockets.sweepSilent`) closes a connection that has waited for its
    /// peer too long, which wakes this wait.
    private func waitForPeer() throws(SocketError) {
        if idleTimeout > 0 && Clock.monotonicNanoseconds() &- lastActivity >= idleTimeout {
            expireForSilence()
            throw .timedOut
        }
        awaitingPeer = true
        changed.wait()
        awaitingPeer = false
    }

    /// The idle timeout passed: reset, and count it on the listener (one line a burst).
    func expireForSilence() {
        guard !closedForSilence, !closedBySelf else { return }
        closeForSilence()
        listener?.noteIdleClose()
    }

    /// Resets the connection because it was silent (timeout or eviction); the service's
    /// next call throws `.timedOut`, and its `close` forgets the stream.
    func closeForSilence() {
        guard !closedForSilence, !closedBySelf else { return }
        closedForSilence = true
        sockets.send(connection.close(), payload: nil, of: connection)
        changed.signal()
    }

    /// Reset by the peer, a protocol violation, or a receive buffer memory refused.
    var isBroken: Bool {
        switch connection.closeReason {
        case .reset, .violation, .noMemory: return true
        default: return false
        }
    }
}
