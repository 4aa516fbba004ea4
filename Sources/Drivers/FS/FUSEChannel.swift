// How `FUSEFileSystem` reaches a FUSE server: the virtio-fs driver on microvm (request
// queue 1 for requests with replies, the high-priority queue 0 for FORGET), or, in host
// tests, the host back-end's `FUSEServer` called in-process.
//
// Rules for implementers:
//   * `exchange` is synchronous for its caller: it returns once the device has used the
//     chain, and `request`/`reply` stay untouched by anyone else until then. Several
//     threads may be inside `exchange` at once (each with its own buffers).
//   * The returned count is what the device reported writing, checked against
//     `reply.count` (a larger claim is the device's fault: throw `.io`).
//   * A failed device (broken ring, reset) throws `.io` from then on.
//   * Every wait on the device has a timeout (virtio-fs: FUSEStallGuard, `fs-timeout=`);
//     a request that times out throws `.io`. Until the device gives the timed-out
//     request's buffers back, `prepare` throws `.io`, so the caller neither writes nor
//     reuses buffers the device may still read or write.
import Core
import Drivers

public protocol FUSEChannel: AnyObject {
    /// Sends one request (device-readable) and waits for its reply, written into `reply`
    /// (device-writable); returns the number of reply bytes.
    func exchange(_ request: UnsafeRawBufferPointer, reply: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int
    /// Sends a request that has no reply (FORGET) on the high-priority queue; the bytes are
    /// copied, so the caller may reuse `request` at once.
    func post(_ request: UnsafeRawBufferPointer) throws(FileSystemError)
    /// Called before the caller fills the buffers of its next `exchange`: throws `.io` when
    /// no request can be sent now (the device failed, or a timed-out request still holds
    /// the previous buffers).
    func prepare() throws(FileSystemError)
}

extension FUSEChannel {
    /// A channel without timeouts (the in-process server of the host tests) is always ready.
    public func prepare() throws(FileSystemError) {}
}
