// One connection PortFront relays: the client's socket, the target's once reached, and a
// fixed buffer for each direction between them (PortFront.swift has the protocol).
// Touched by the front's relay thread only.

#if canImport(Glibc)
import Glibc
#endif

/// One client's connection and, once reached, the target's.
final class PortRelay {
    let client: Int32
    let target: Int
    var upstream: Int32 = -1
    /// Connect attempts abandoned so far, the first attempt's time and the current one's end.
    var attempt = 0
    var firstTry = 0.0
    var deadline = 0.0
    /// Bytes from the client on their way to the target, and back.
    var toTarget = RelayDirection()
    var toClient = RelayDirection()

    init(client: Int32, target: Int) {
        self.client = client
        self.target = target
    }

    /// The poll events of the client's socket and the target's.
    var events: (client: Int16, upstream: Int16) {
        let input = Int16(POLLIN), output = Int16(POLLOUT)
        return ((toTarget.wantsRead ? input : 0) | (toClient.pending ? output : 0),
                (toClient.wantsRead ? input : 0) | (toTarget.pending ? output : 0))
    }
}

/// One direction of a relay: a fixed buffer between a source socket and a destination.
struct RelayDirection {
    /// Empty until the relay is connected; then its fixed size for good.
    var buffer: [UInt8] = []
    /// The bytes not yet written are `buffer[start..<end]`.
    var start = 0
    var end = 0
    /// The source reached its end of stream.
    var sourceEnded = false
    /// The end was passed on (shutdown(SHUT_WR) of the destination).
    var shutDown = false

    var pending: Bool { end > start }
    var wantsRead: Bool { !sourceEnded && (start > 0 || end < buffer.count) }

    /// One read from `fd`; false on an error (a reset).
    mutating func fill(from fd: Int32) -> Bool {
        if start == end {
            start = 0
            end = 0
        } else if end == buffer.count {
            let count = end - start, from = start
            buffer.withUnsafeMutableBytes { raw in
                _ = memmove(raw.baseAddress!, raw.baseAddress! + from, count)
            }
            start = 0
            end = count
        }
        let offset = end, room = buffer.count - end
        let n = buffer.withUnsafeMutableBytes { raw in recv(fd, raw.baseAddress! + offset, room, 0) }
        if n > 0 {
            end += n
        } else if n == 0 {
            sourceEnded = true
        } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
            return false
        }
        return true
    }

    /// Writes what is buffered to `fd` and passes a drained end on; false on an error.
    mutating func drain(to fd: Int32) -> Bool {
        while end > start {
            let offset = start, count = end - start
            let n = buffer.withUnsafeBytes { raw in send(fd, raw.baseAddress! + offset, count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                start += n
            } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                break
            } else {
                return false
            }
        }
        if start == end { start = 0; end = 0 }
        if sourceEnded && start == end && !shutDown {
            shutdown(fd, Int32(SHUT_WR))
            shutDown = true
        }
        return true
    }
}
