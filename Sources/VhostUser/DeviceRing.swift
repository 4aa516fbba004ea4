// One running virtqueue as the back-end sees it: VirtIO's DeviceQueue over guest memory,
// plus the call eventfd that interrupts the guest (vhost-user.rst "Ring states": a ring
// runs from SET_VRING_KICK until GET_VRING_BASE; SET_VRING_CALL names its interrupt).
//
// The guest is hostile (virtio 1.2 §2.7.5, VirtIO's DeviceQueue header): the first ring
// violation is logged once and the ring is marked broken; a broken ring is never touched
// again (the back-end keeps running; the guest must reset the device).
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

    public init(name: String, queue: DeviceQueue, memory: any GuestMemory, callFD: Int32 = -1) {
        self.name = name
        self.queue = queue
        self.memory = memory
        self.callFD = callFD
    }

    /// The next available chain; nil when there is none or the ring is (now) broken.
    public func pop() -> DescriptorChain? {
        guard !isBroken else { return nil }
        do {
            return try queue.popAvailable(memory)
        } catch {
            breakRing("\(error)")
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
