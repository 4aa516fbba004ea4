// The memory fences of the split virtqueue, one per place the spec asks for one.
//
// Driver and device run concurrently (another CPU, another host thread or process) and
// share the rings through plain memory, so each side must order its own accesses:
//
//   driver: descriptors, avail slot ─ beforePublishingAvailIndex ─ avail.idx   (§2.7.13.3)
//           avail.idx ─ beforeNotify ─ read used.flags, kick       (§2.7.13.4, §2.7.10)
//           used.idx ─ afterReadingUsedIndex ─ read used elements  (§2.7.14)
//   device: avail.idx ─ afterReadingAvailIndex ─ read avail slot, descriptors (§2.7.13)
//           buffers, used element ─ beforePublishingUsedIndex ─ used.idx     (§2.7.8)
//           used.idx ─ beforeInterrupt ─ read avail.flags, interrupt        (§2.7.7)
//
// Each pair (a release fence before publishing an index, an acquire fence after reading
// the other side's index) is the publish/consume pattern: what was written before the
// index is visible after the index is seen. The two full fences close the store→load
// race of notification suppression: without them a side could read the other's "don't
// notify me" flag from before its own index update became visible, and both sides
// would go to sleep (the bug fixed in Linux's virtqueue_kick_prepare, 2012).
//
// On x86-64 (TSO) the release and acquire fences compile to nothing but a compiler
// barrier, and the full fence to `mfence` (or a locked instruction). They are functions,
// not comments, so that weaker hardware and the optimiser both honour them.
//
// Rules for callers: call them exactly where the comments above say; the ring types in
// this folder already do. Do not replace them with volatile accesses: `volatile` orders
// nothing with respect to other memory.
import Synchronization

/// Named memory fences for the split virtqueue (virtio 1.2 §2.7.13).
public enum VirtIOFence {
    /// Driver, §2.7.13.3.1: "The driver MUST perform a suitable memory barrier before the
    /// idx update, to ensure the device sees the most up-to-date copy" of the descriptors
    /// and the available-ring entries. Store→store (release).
    @inline(__always)
    public static func beforePublishingAvailIndex() {
        atomicMemoryFence(ordering: .releasing)
    }

    /// Driver, §2.7.13.4.1 (and §2.7.10): "The driver MUST perform a suitable memory
    /// barrier before reading flags or avail_event, to avoid missing a notification."
    /// Orders the avail.idx store before the used.flags load (store→load: a full fence).
    @inline(__always)
    public static func beforeNotify() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }

    /// Driver, §2.7.14 (receiving used buffers): the used elements below used.idx must be
    /// read after used.idx itself, or the driver could read a slot before the device's
    /// write of it is visible. Load→load (acquire).
    @inline(__always)
    public static func afterReadingUsedIndex() {
        atomicMemoryFence(ordering: .acquiring)
    }

    /// Device, §2.7.13: the avail slots and the descriptors they name are read after
    /// avail.idx, pairing with the driver's `beforePublishingAvailIndex`. Load→load (acquire).
    @inline(__always)
    public static func afterReadingAvailIndex() {
        atomicMemoryFence(ordering: .acquiring)
    }

    /// Device, §2.7.8: the buffer contents and the used element (id, len) must be
    /// visible before used.idx ("The device MUST set len prior to updating the used idx").
    /// Store→store (release), pairing with the driver's `afterReadingUsedIndex`.
    @inline(__always)
    public static func beforePublishingUsedIndex() {
        atomicMemoryFence(ordering: .releasing)
    }

    /// Device, §2.7.7 (used buffer notification suppression): orders the used.idx store
    /// before the avail.flags load that decides whether to interrupt (store→load: a full
    /// fence), the mirror of `beforeNotify`.
    @inline(__always)
    public static func beforeInterrupt() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }
}
