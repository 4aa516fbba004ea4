// The connections a listener has admitted and its service has not accepted yet, and the
// wait for the next one: what vsock's and TCP's listeners share.
//
// Rules: one CPU (the provider's), cooperatively scheduled: `push` from the thread that
// admits connections (the driver's or network thread), `next` from the service's thread.
// The queue is bounded by its listener's backlog (ListenerAdmission refuses beyond it).

public final class AcceptQueue<Stream: AnyObject> {
    public private(set) var pending: [Stream] = []
    public let arrived = Event()
    public private(set) var closed = false

    public init() {}

    /// Hands a newly admitted connection to the next `next`.
    public func push(_ stream: Stream) {
        pending.append(stream)
        arrived.signal()
    }

    /// Waits for the oldest admitted connection. Throws `.closed` once the listener is
    /// closed and `.deviceFailed` once `failed` says so (a failure wakes the wait through
    /// `wake`).
    public func next(failed: () -> Bool) throws(SocketError) -> Stream {
        while true {
            if closed { throw .closed }
            if failed() { throw .deviceFailed }
            if !pending.isEmpty {
                let stream = pending.removeFirst()
                if pending.isEmpty { pending = [] }
                return stream
            }
            arrived.reset()
            arrived.wait()
        }
    }

    /// Takes `stream` out if it is still waiting (an eviction); true when it was.
    public func remove(_ stream: Stream) -> Bool {
        guard let index = pending.firstIndex(where: { $0 === stream }) else { return false }
        pending.remove(at: index)
        return true
    }

    /// Closes the queue and returns what was never accepted, for the caller to close.
    public func close() -> [Stream] {
        closed = true
        let left = pending
        pending = []
        arrived.signal()
        return left
    }

    /// Wakes a waiting `next` (the device failed).
    public func wake() { arrived.signal() }
}
