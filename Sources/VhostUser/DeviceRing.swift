// One running virtqueue as the back-end sees it: VirtIO's DeviceQueue over guest memory,
// plus the call eventfd that interrupts the guest (vhost-user.rst "Ring states": a ring
// runs from SET_VRING_KICK until GET_VRING_BASE; SET_VRING_CALL names its interrupt).
//
// The guest is hostile (virtio 1.2 §2.7.5, VirtIO's DeviceQueue header): the first ring
// violation is logged once and the ring is marked broken; a broken ring is never touched
// again (the back-end keeps running; the guest must reset the device).
//
// Kicks (virtio 1.2 §2.7.13.4: the driver publishes avail.idx, then notifies): the
// session records avail.idx each time it drains this ring's kick eventfd (`noteKick`), so
// every chain up to it was announced. `recheck`, on the event loop's periodic poll, finds
// chains published after it that no kick announced for a whole interval: a kick lost
// somewhere between the guest and us would otherwise stall the ring for good once the
// guest has no free buffer left to post (and so no reason to kick again).
import VirtIO

public final class DeviceRing {
    public let name: String
    public private(set) var queue: DeviceQueue
    public let memory: any GuestMemory
    /// The call eventfd (-1: none); signalled when used buffers need an interrupt.
    public var callFD: Int32
    /// Used-buffer notifications for in-process tests (instead of an eventfd).
    public var onInterrupt: (() -> Void)?
    public private(set) var isBroken = false
    /// Chains returned since the last notification.
    private var returnedSinceNotify = 0
    /// avail.idx as read after the last kick was drained (or when the ring started).
    public private(set) var announcedAvailIndex: UInt16
    /// avail.idx found unannounced and unserved by the last `recheck` (nil: none).
    private var unannouncedAtLastRecheck: UInt16?

    public init(name: String, queue: DeviceQueue, memory: any GuestMemory, callFD: Int32 = -1) {
        self.name = name
        self.queue = queue
        self.memory = memory
        self.callFD = callFD
        announcedAvailIndex = memory.load(UInt16.self, at: queue.availRing + VirtqueueFormat.ringIndex) ?? queue.nextAvailIndex
    }

    /// avail.idx as the guest last wrote it (a hint: `pop` validates); nil if unreadable.
    public var availIndex: UInt16? { memory.load(UInt16.self, at: queue.availRing + VirtqueueFormat.ringIndex) }

    /// The ring's kick eventfd was drained: everything published so far was announced.
    /// Call before running the device for the kick.
    public func noteKick() {
        if let index = availIndex { announcedAvailIndex = index }
        unannouncedAtLastRecheck = nil
    }

    /// The periodic check: the avail.idx to serve when chains the device has not taken
    /// were published after the last kick and were already found so at the previous
    /// check (so no kick came for a whole interval); nil otherwise. A guest between its
    /// avail.idx store and its notify is seen once, never twice, unless it stalls there
    /// for the whole interval.
    public func recheck() -> UInt16? {
        guard !isBroken, let index = availIndex, index != announcedAvailIndex, index != queue.nextAvailIndex else {
            unannouncedAtLastRecheck = nil
            return nil
        }
        guard unannouncedAtLastRecheck == index else {
            unannouncedAtLastRecheck = index
            return nil
        }
        unannouncedAtLastRecheck = nil
        announcedAvailIndex = index
        return index
    }

    /// The next available chain; nil when there is none or the ring is (now) broken.
    public func pop() -> DescriptorChain? {
        guard !isBroken else { return nil }
        do {
            return try queue.popAvailable(memory)
        } catch {
            // The indices say who is out of step: the driver may have at most `size`
            // chains between what we took (nextAvailIndex) and what it published.
            breakRing("\(error) (this side: took up to avail.idx \(queue.nextAvailIndex), returned up to used.idx "
                      + "\(queue.nextUsedIndex), holding \(queue.chainsHeld) of \(queue.size); the last kick saw avail.idx "
                      + "\(announcedAvailIndex))")
            return nil
        }
    }

    /// Returns a chain with `length` bytes written.
    public func complete(_ head: UInt16, length: UInt32) {
        guard !isBroken else { return }
        do {
            try queue.addUsed(memory, head: head, length: length)
            returnedSinceNotify += 1
        } catch {
            breakRing("\(error)")
        }
    }

    /// Interrupts the guest if chains were returned and it wants to hear (§2.7.7).
    public func notifyIfNeeded() {
        guard returnedSinceNotify > 0, !isBroken else { return }
        returnedSinceNotify = 0
        guard queue.needsInterrupt(memory) else { return }
        if let onInterrupt { onInterrupt() }
        if callFD >= 0 { Posix.signal(eventFD: callFD) }
    }

    func breakRing(_ reason: String) {
        if !isBroken { BackendLog.line("\(name) queue broken by the guest: \(reason); ignoring it until reset") }
        isBroken = true
    }
}
