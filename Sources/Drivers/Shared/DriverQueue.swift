// One virtqueue as a guest driver owns it: the ring memory (whole pages from the kernel's
// page allocator), VirtIO's `SplitVirtqueue` over it, and its registration through the
// transport (virtio 1.2 §3.1.1 step 7, §4.2.3.2).
//
// Rules for callers: `memory` must cover the pages `KernelMemory` hands out (the kernel
// passes `IdentityMemory` over all RAM), since the ring lives there; drivers address their
// own buffers, also kernel pages, through the same identity mapping.
import Core
import VirtIO

public struct DriverQueue<Memory: GuestMemory> {
    public let index: UInt16
    public var ring: SplitVirtqueue
    public let memory: Memory

    /// Sets up queue `index` with at most `wanted` entries (the device's maximum wins if
    /// smaller). Nil when the device has no such queue or memory runs out.
    public init?(transport: some VirtIOTransport, index: UInt16, wanted: UInt16, memory: Memory) {
        guard let size = try? VirtIODevice.queueSize(transport: transport, index: index, preferred: wanted) else {
            return nil
        }
        let bytes = VirtqueueLayout.descriptorTableBytes(size: size) + VirtqueueLayout.availRingBytes(size: size)
            + VirtqueueLayout.usedRingBytes(size: size) + 4
        let pages = Int((bytes + 4095) / 4096)
        guard let base = KernelMemory.allocatePages(pages), let layout = VirtqueueLayout(size: size, base: base) else {
            return nil
        }
        do {
            var ring = try SplitVirtqueue(layout: layout)
            try ring.setUp(memory)
            self.ring = ring
        } catch {
            KernelMemory.freePages(base, pages)
            return nil
        }
        self.index = index
        self.memory = memory
        VirtIODevice.activate(transport: transport, index: index, queue: ring)
    }

    /// Publishes what was added and kicks the device if it wants to be told (§2.7.13.4).
    public mutating func publishAndNotify(_ transport: some VirtIOTransport) throws(VirtqueueError) {
        try ring.publish(memory)
        // needsNotification fences before it reads the device's flags (§2.7.13.4).
        if ring.needsNotification(memory) { transport.notify(index) }
    }
}
