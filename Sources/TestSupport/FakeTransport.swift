// A fake virtio transport that records every register access, for bring-up tests and
// for driver tests that need a device: a trace proves the §3.1.1 sequence, knobs make
// the device misbehave.
//
// It models what a real device does with the status field: writing 0 resets (status,
// accepted features); FEATURES_OK is refused when the driver accepted a feature the
// device did not offer (§2.2.1). Knobs: `featuresOKSticks = false` (the device clears
// FEATURES_OK regardless), `neverResets = true` (a write of 0 is ignored).
//
// Rules for callers: a class (a transport names one device); one test thread.
import VirtIO

/// A recording, programmable `VirtIOTransport`.
public final class FakeTransport: VirtIOTransport {
    /// One register access, in the order made.
    public enum Access: Equatable, Sendable {
        case readDeviceFeatures(select: UInt32, value: UInt32)
        case writeDriverFeatures(select: UInt32, value: UInt32)
        case readStatus(UInt8)
        case writeStatus(UInt8)
        case queueMax(index: UInt16, value: UInt16)
        case setUpQueue(index: UInt16, size: UInt16, descriptor: UInt64, avail: UInt64, used: UInt64)
        case enableQueue(UInt16)
        case notify(UInt16)
        case interruptStatus(UInt32)
        case acknowledge(UInt32)
        case configGeneration(UInt32)
        case configRead(offset: Int, value: UInt8)
    }

    /// Every access so far.
    public private(set) var trace: [Access] = []
    /// Whether status reads are recorded (turn off for long polling loops).
    public var tracesStatusReads = true

    // MARK: the device's side

    /// The 64 feature bits the device offers.
    public var offeredFeatures: UInt64
    /// The features the driver wrote (both words), reset to 0 by a device reset.
    public private(set) var driverFeatures: UInt64 = 0
    /// The status field as the device holds it.
    public var deviceStatus: UInt8
    /// QueueNumMax per queue index (absent: 0).
    public var queueMaxima: [UInt16]
    /// Queues programmed by `setUpQueue`, by index, and whether they are enabled.
    public private(set) var queues: [UInt16: (size: UInt16, descriptor: UInt64, avail: UInt64, used: UInt64)] = [:]
    public private(set) var enabledQueues: Set<UInt16> = []
    /// Notifications received, per queue index.
    public private(set) var notifications: [UInt16: Int] = [:]
    /// Pending interrupt causes (`VirtIOInterrupt` bits).
    public var pendingInterrupts: UInt32 = 0
    /// The device configuration space.
    public var config: [UInt8]
    /// The configuration generation.
    public var generation: UInt32 = 0
    /// Added to `generation` after every config byte read (a device that keeps changing
    /// its configuration); 0 for a stable one.
    public var generationStepPerRead: UInt32 = 0

    // MARK: misbehaviour knobs

    /// False: the device clears FEATURES_OK whatever the driver accepted.
    public var featuresOKSticks = true
    /// True: writing 0 to the status does not reset the device.
    public var neverResets = false

    public init(offeredFeatures: UInt64 = VirtIOFeature.version1, queueMaxima: [UInt16] = [256],
                config: [UInt8] = [], initialStatus: UInt8 = 0) {
        self.offeredFeatures = offeredFeatures
        self.queueMaxima = queueMaxima
        self.config = config
        deviceStatus = initialStatus
    }

    /// Forgets the trace so far.
    public func clearTrace() { trace.removeAll() }

    // MARK: VirtIOTransport

    public func deviceFeatures(select: UInt32) -> UInt32 {
        let value: UInt32 = select < 2 ? UInt32(truncatingIfNeeded: offeredFeatures >> (32 * UInt64(select))) : 0
        trace.append(.readDeviceFeatures(select: select, value: value))
        return value
    }

    public func setDriverFeatures(select: UInt32, value: UInt32) {
        trace.append(.writeDriverFeatures(select: select, value: value))
        switch select {
        case 0: driverFeatures = driverFeatures & ~0xFFFF_FFFF | UInt64(value)
        case 1: driverFeatures = driverFeatures & 0xFFFF_FFFF | UInt64(value) << 32
        default: break
        }
    }

    public var status: DeviceStatus {
        get {
            if tracesStatusReads { trace.append(.readStatus(deviceStatus)) }
            return DeviceStatus(rawValue: deviceStatus)
        }
        set {
            trace.append(.writeStatus(newValue.rawValue))
            if newValue.rawValue == 0 {
                if !neverResets { reset() }
                return
            }
            var value = newValue
            if value.contains(.featuresOK) && !DeviceStatus(rawValue: deviceStatus).contains(.featuresOK) {
                // §2.2.1: the device refuses a subset containing features it did not offer.
                if !featuresOKSticks || driverFeatures & ~offeredFeatures != 0 { value.remove(.featuresOK) }
            }
            deviceStatus = value.rawValue
        }
    }

    public func queueMax(_ index: UInt16) -> UInt16 {
        let value = Int(index) < queueMaxima.count ? queueMaxima[Int(index)] : 0
        trace.append(.queueMax(index: index, value: value))
        return value
    }

    public func setUpQueue(_ index: UInt16, size: UInt16, descriptor: UInt64, avail: UInt64, used: UInt64) {
        trace.append(.setUpQueue(index: index, size: size, descriptor: descriptor, avail: avail, used: used))
        queues[index] = (size: size, descriptor: descriptor, avail: avail, used: used)
    }

    public func enableQueue(_ index: UInt16) {
        trace.append(.enableQueue(index))
        enabledQueues.insert(index)
    }

    public func notify(_ index: UInt16) {
        trace.append(.notify(index))
        notifications[index, default: 0] += 1
    }

    public func interruptStatus() -> UInt32 {
        trace.append(.interruptStatus(pendingInterrupts))
        return pendingInterrupts
    }

    public func acknowledge(_ bits: UInt32) {
        trace.append(.acknowledge(bits))
        pendingInterrupts &= ~bits
    }

    public func configGeneration() -> UInt32 {
        trace.append(.configGeneration(generation))
        return generation
    }

    public func configRead(_ offset: Int) -> UInt8 {
        let value = offset >= 0 && offset < config.count ? config[offset] : 0
        trace.append(.configRead(offset: offset, value: value))
        generation &+= generationStepPerRead
        return value
    }

    /// What a device reset does (§2.4.1): status 0, accepted features and queues forgotten.
    private func reset() {
        deviceStatus = 0
        driverFeatures = 0
        queues.removeAll()
        enabledQueues.removeAll()
        pendingInterrupts = 0
    }
}
