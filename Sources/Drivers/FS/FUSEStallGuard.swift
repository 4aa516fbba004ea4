// A timeout on every FUSE request a device serves, and what happens after one (issue 9: a
// stalled back-end must not hang every thread forever). The virtio-fs driver keeps the ring
// and the waiting primitive (`FUSERequestQueue`); this guard keeps the rules, so the host
// tests can run them against a scripted device and a fake clock.
//
// Walkthrough. One request is in flight at a time (FUSEFileSystem serialises its callers).
//   1. `prepare` before the caller writes its request buffer: throws `.io` at once while a
//      timed-out request is still with the device (see 4), after one look for its late reply.
//   2. `exchange` posts the chain, then waits for the device until `timeout` (default 30 s,
//      kernel argument `fs-timeout=SECONDS`, 1-3600) has passed since posting.
//   3. A used element with the request's id: its length is returned. Any other id is the
//      device's fault: the queue is failed (`fail`), `.io` from then on.
//   4. No answer in time: the request fails with `.io`, and the device is *stalled*: the
//      timed-out chain still names the caller's request and reply buffers, and the device
//      may write the reply whenever it likes. So until the device gives that chain back,
//      nothing is posted and every request fails at once (`prepare`, step 1): a late reply
//      can only land in a reply buffer no one reads, and no caller waits another timeout.
//      The stall is logged once, when it starts, and once when it ends (the late reply
//      arrives; requests resume).
// Rules for callers: call `prepare` before filling the buffers handed to `exchange`, and
// never free those buffers while `isStalled` (FUSEFileSystem lives as long as the kernel).
// The queue's `takeUsed` arms the wake-up (resets the interrupt event) before it looks, so
// a completion after the look ends `waitForDevice` at once.
import Core
import Drivers

/// The driver's side of one request queue, as the guard needs it.
public protocol FUSERequestQueue: AnyObject {
    /// Adds the chain request (device-readable) + reply (device-writable), publishes it and
    /// notifies the device; returns the chain's head id. Throws `.io` when the ring refuses
    /// (the queue is then failed).
    func submit(request: UnsafeRawBufferPointer, reply: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> UInt16
    /// Arms the wake-up, then takes the next used element, nil when there is none. Throws
    /// `.io` when the device broke the ring (the queue is then failed).
    func takeUsed() throws(FileSystemError) -> (id: UInt16, length: UInt32)?
    /// Returns when the device may have used a chain, or at `deadline` (monotonic
    /// nanoseconds) at the latest; may return early.
    func waitForDevice(until deadline: UInt64)
    /// Monotonic nanoseconds.
    func now() -> UInt64
    /// Marks the device failed with one log line: every later request throws `.io`.
    func fail(_ reason: StaticString)
}

public final class FUSEStallGuard {
    /// The default wait for one reply: 30 s.
    public static let defaultTimeoutSeconds = 30

    /// How long one request may wait for its reply, in nanoseconds.
    public let timeout: UInt64
    /// The head of the chain that timed out and is still with the device; nil when none.
    public private(set) var stalledHead: UInt16? = nil
    /// Requests that timed out since start.
    public private(set) var timeouts = 0
    /// Requests refused at once while stalled.
    public private(set) var refusedWhileStalled = 0

    public init(timeoutSeconds: Int = FUSEStallGuard.defaultTimeoutSeconds) {
        timeout = UInt64(max(1, timeoutSeconds)) * 1_000_000_000
    }

    /// `fs-timeout=SECONDS` (1-3600), or the default.
    public static func timeoutSeconds(_ commandLine: KernelCommandLine) throws(KernelArgumentError) -> Int {
        try commandLine.number("fs-timeout", minimum: 1, maximum: 3600) ?? defaultTimeoutSeconds
    }

    public var isStalled: Bool { stalledHead != nil }

    /// Throws `.io` while a timed-out request is still with the device (after one look for
    /// its late reply, which ends the stall).
    public func prepare<Queue: FUSERequestQueue>(_ queue: Queue) throws(FileSystemError) {
        guard let stalled = stalledHead else { return }
        while let used = try queue.takeUsed() {
            guard used.id == stalled else {
                queue.fail("the device completed a request that was not in flight")
                throw .io
            }
            stalledHead = nil
            Log.timestamp()
            Log.write("virtio-fs: the host answered the request that timed out; requests resume\n")
            return
        }
        refusedWhileStalled += 1
        throw .io
    }

    /// Sends one request and waits for its reply, at most `timeout`; the reply's length.
    public func exchange<Queue: FUSERequestQueue>(_ queue: Queue, request: UnsafeRawBufferPointer,
                                                  reply: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        try prepare(queue)
        let head = try queue.submit(request: request, reply: reply)
        let start = queue.now()
        let deadline = start &+ timeout < start ? UInt64.max : start &+ timeout
        while true {
            if let used = try queue.takeUsed() {
                guard used.id == head else {
                    queue.fail("the device completed a request that was not in flight")
                    throw .io
                }
                return Int(used.length)
            }
            if queue.now() >= deadline {
                stalledHead = head
                timeouts += 1
                Log.timestamp()
                Log.write("virtio-fs: no answer from the host within ")
                Log.decimal(Int(timeout / 1_000_000_000))
                Log.write(" s; requests fail with an I/O error until it answers\n")
                throw .io
            }
            queue.waitForDevice(until: deadline)
        }
    }
}
