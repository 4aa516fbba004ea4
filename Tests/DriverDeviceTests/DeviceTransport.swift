// A transport double that wires a real guest driver's virtqueues to a real host device
// (a `VhostUserDevice`: FSDevice, VsockDevice) in one process, the way a vhost-user
// session wires QEMU's rings to a back-end, with no sockets in between.
//
// The registers are TestSupport's `FakeTransport` (feature negotiation, status,
// queue programming, the trace); this class adds what the device side does with them:
//   * DRIVER_OK: every enabled queue becomes a `DeviceRing` (VirtIO's DeviceQueue at the
//     addresses the driver programmed) over `memory`, attached to the device (vhost-user:
//     SET_VRING_ADDR ... SET_VRING_KICK). A reset (status 0) detaches them.
//   * notify(i): the device's `kicked(index: i)`, at once (`kicksRunDevice`, a device on
//     another CPU that is never late) or when the test calls `runDevice()` (a device that
//     only runs while the driver polls: the driver's spin-wait hint calls it).
//   * the device's used-buffer notification (DeviceRing.onInterrupt) latches
//     VIRTIO_MMIO_INT_VRING in the interrupt status; the test delivers the interrupt by
//     calling the driver's handler, which reads and acknowledges it as the kernel's does.
//   * `afterService`: runs after the device served a kick, so a test can play a device
//     that completes a chain with a bad used id or length (`rewriteLastUsed`).
//
// Rules for callers: one test thread; the driver never re-enters itself (the device only
// latches interrupts, it never calls the driver).
import VhostUser
import VirtIO
import TestSupport

final class DeviceTransport<Device: VhostUserDevice>: VirtIOTransport {
    /// The register file: features, status, queue addresses, notifications, the trace.
    let registers: FakeTransport
    let device: Device
    /// The guest memory the device sees (the driver's, shared).
    let memory: any GuestMemory
    /// The running rings, by queue index (after DRIVER_OK, until a reset).
    private(set) var rings: [Int: DeviceRing] = [:]
    /// True: a notification runs the device at once; false: at `runDevice()`.
    var kicksRunDevice = true
    /// Queues notified and not yet served (when `kicksRunDevice` is false), in order.
    private(set) var pendingKicks: [UInt16] = []
    /// Used-buffer interrupts the device raised.
    private(set) var interruptsRaised = 0
    /// Called after the device served queue `index` (hostile-device injection).
    var afterService: ((_ index: Int, _ ring: DeviceRing) -> Void)?

    init(device: Device, memory: any GuestMemory, config: [UInt8], queueMaximum: UInt16 = 256) {
        self.device = device
        self.memory = memory
        registers = FakeTransport(offeredFeatures: VirtIOFeature.version1 | device.deviceFeatures,
                                  queueMaxima: [UInt16](repeating: queueMaximum, count: device.queueCount),
                                  config: config)
    }

    /// Whether an interrupt is pending (without a register access in the trace).
    var interruptPending: Bool { registers.pendingInterrupts != 0 }

    /// Serves every queue notified since the last call.
    func runDevice() {
        let kicks = pendingKicks
        pendingKicks = []
        for index in kicks { serve(index) }
    }

    private func serve(_ index: UInt16) {
        device.kicked(index: Int(index))
        if let ring = rings[Int(index)] { afterService?(Int(index), ring) }
    }

    /// Overwrites the element the device used last on `ring` (virtio 1.2 §2.7.8: the used
    /// ring is le16 flags, le16 idx, then `size` elements of le32 id, le32 len), as a
    /// broken device would have written it.
    func rewriteLastUsed(_ ring: DeviceRing, id: UInt32? = nil, length: UInt32? = nil) {
        let slot = UInt64((ring.queue.nextUsedIndex &- 1) & (ring.queue.size &- 1))
        let element = ring.queue.usedRing + 4 + slot * 8
        if let id { precondition(memory.store(id, at: element)) }
        if let length { precondition(memory.store(length, at: element + 4)) }
    }

    // MARK: what the device side does on register writes

    private func attachQueues() {
        for (index, queue) in registers.queues.sorted(by: { $0.key < $1.key })
        where registers.enabledQueues.contains(index) {
            guard let deviceQueue = try? DeviceQueue(size: queue.size, descriptorTable: queue.descriptor,
                                                     availRing: queue.avail, usedRing: queue.used) else {
                // A real back-end refuses the ring (vhost-user: the session fails); the
                // driver then sees a device that never answers.
                continue
            }
            let ring = DeviceRing(name: device.queueName(Int(index)), queue: deviceQueue, memory: memory)
            ring.onInterrupt = { [unowned self] in
                registers.pendingInterrupts |= VirtIOInterrupt.usedBuffer
                interruptsRaised += 1
            }
            rings[Int(index)] = ring
            device.attach(ring, index: Int(index))
        }
    }

    private func detachQueues() {
        for index in rings.keys.sorted() { device.attach(nil, index: index) }
        rings = [:]
        pendingKicks = []
    }

    // MARK: VirtIOTransport

    func deviceFeatures(select: UInt32) -> UInt32 { registers.deviceFeatures(select: select) }
    func setDriverFeatures(select: UInt32, value: UInt32) { registers.setDriverFeatures(select: select, value: value) }

    var status: DeviceStatus {
        get { registers.status }
        set {
            let before = DeviceStatus(rawValue: registers.deviceStatus)
            registers.status = newValue
            if newValue.rawValue == 0 {
                detachQueues()
            } else if newValue.contains(.driverOK) && !before.contains(.driverOK) {
                attachQueues()
            }
        }
    }

    func queueMax(_ index: UInt16) -> UInt16 { registers.queueMax(index) }
    func setUpQueue(_ index: UInt16, size: UInt16, descriptor: UInt64, avail: UInt64, used: UInt64) {
        registers.setUpQueue(index, size: size, descriptor: descriptor, avail: avail, used: used)
    }
    func enableQueue(_ index: UInt16) { registers.enableQueue(index) }

    func notify(_ index: UInt16) {
        registers.notify(index)
        guard rings[Int(index)] != nil else { return }
        if kicksRunDevice {
            serve(index)
        } else if !pendingKicks.contains(index) {
            pendingKicks.append(index)
        }
    }

    func interruptStatus() -> UInt32 { registers.interruptStatus() }
    func acknowledge(_ bits: UInt32) { registers.acknowledge(bits) }
    func configGeneration() -> UInt32 { registers.configGeneration() }
    func configRead(_ offset: Int) -> UInt8 { registers.configRead(offset) }
}
