// Device initialisation and feature negotiation (virtio 1.2 §3.1.1, §2.1, §2.2), written
// once over `VirtIOTransport` for every transport and every device type.
//
// §3.1.1, "The driver MUST follow this sequence to initialize a device":
//   1. Reset the device.                                   initialize: status 0, wait for 0
//   2. Set the ACKNOWLEDGE status bit.                     initialize
//   3. Set the DRIVER status bit.                          initialize
//   4. Read device feature bits, write the subset understood. initialize
//   5. Set the FEATURES_OK status bit.                     initialize
//   6. Re-read device status to ensure FEATURES_OK is still set: otherwise the device
//      does not support our subset and the device is unusable. initialize (FAILED, throw)
//   7. Device-specific setup: discover and program queues, read config. the caller
//                                                          (queueSize, activate)
//   8. Set the DRIVER_OK status bit.                       finish
// "If any of these steps go irrecoverably wrong, the driver SHOULD set the FAILED status
// bit to indicate that it has given up on the device": every error thrown after the
// reset sets FAILED first.
//
// Rules for callers:
//   * `initialize`, then program every queue (`queueSize`, `SplitVirtqueue.setUp`,
//     `activate`), then `finish`; only then notify queues (§3.1.1: "The device MUST NOT
//     consume buffers or send any used buffer notifications to the driver before
//     DRIVER_OK").
//   * Check the returned features before relying on an optional one.
//   * On any later device error, `fail(transport)`, and reset before trying again.

/// Why a device could not be brought up.
public enum VirtIOError: Error, Equatable, Sendable {
    /// The status field did not read 0 after a reset within the poll budget (§2.4.2);
    /// the payload is the last value read.
    case resetTimedOut(lastStatus: UInt8)
    /// The device does not offer VIRTIO_F_VERSION_1: it is legacy-only (§6.1).
    case missingVersion1
    /// The device does not offer every required feature; the payload is the missing bits.
    case missingRequiredFeatures(UInt64)
    /// The caller required a feature the Core does not implement
    /// (`VirtIOFeature.unsupportedByCore`); the payload is those bits. The device is untouched.
    case unsupportedFeatures(UInt64)
    /// FEATURES_OK did not stick: the device rejected the accepted subset (§3.1.1 step 6).
    case featuresNotAccepted
    /// The transport has no queue at this index (its maximum size reads 0).
    case queueUnavailable(UInt16)
}

/// Bring-up of a virtio device over any transport (§3.1.1).
public enum VirtIODevice {
    /// The status once features are negotiated.
    static let negotiated: DeviceStatus = [.acknowledge, .driver, .featuresOK]

    /// Steps 1-6 of §3.1.1: resets the device, announces the driver, and accepts the
    /// features the device offers among `wanted` and `required` (plus VERSION_1, always
    /// required; never `VirtIOFeature.unsupportedByCore`). Returns the accepted features.
    /// `resetPolls` bounds the wait for the status to read 0 after the reset.
    /// Throws, having set FAILED (except `unsupportedFeatures`, checked before any access):
    /// `resetTimedOut`, `missingVersion1`, `missingRequiredFeatures`, `featuresNotAccepted`.
    public static func initialize<T: VirtIOTransport>(
        transport: T, wanted: UInt64, required: UInt64, resetPolls: Int = 1_000_000
    ) throws(VirtIOError) -> UInt64 {
        let unsupported = required & VirtIOFeature.unsupportedByCore
        guard unsupported == 0 else { throw .unsupportedFeatures(unsupported) }

        // 1. Reset; §2.4.2: the driver "SHOULD consider a driver-initiated reset complete
        //    when it reads device status as 0".
        transport.status = []
        var polls = 1
        var seen = transport.status
        while seen.rawValue != 0 {
            guard polls < resetPolls else {
                transport.status = [.failed]
                throw .resetTimedOut(lastStatus: seen.rawValue)
            }
            polls += 1
            seen = transport.status
        }

        // 2, 3. The driver only adds bits (§2.1.1), keeping the value it wrote.
        var status: DeviceStatus = [.acknowledge]
        transport.status = status
        status.insert(.driver)
        transport.status = status

        // 4. Read all 64 device feature bits, accept a subset.
        let offered = UInt64(transport.deviceFeatures(select: 0))
            | UInt64(transport.deviceFeatures(select: 1)) << 32
        guard offered & VirtIOFeature.version1 != 0 else {
            transport.status = status.union(.failed)
            throw .missingVersion1
        }
        let needed = required | VirtIOFeature.version1
        let missing = needed & ~offered
        guard missing == 0 else {
            transport.status = status.union(.failed)
            throw .missingRequiredFeatures(missing)
        }
        let accepted = offered & (wanted | needed) & ~VirtIOFeature.unsupportedByCore
        transport.setDriverFeatures(select: 0, value: UInt32(truncatingIfNeeded: accepted))
        transport.setDriverFeatures(select: 1, value: UInt32(truncatingIfNeeded: accepted >> 32))

        // 5, 6. FEATURES_OK, and check that the device kept it.
        status.insert(.featuresOK)
        transport.status = status
        let kept = transport.status
        guard kept.contains(.featuresOK) else {
            // Add FAILED to what the device reports (as Linux's virtio_add_status does),
            // not to the FEATURES_OK it refused.
            transport.status = kept.union(.failed)
            throw .featuresNotAccepted
        }
        return accepted
    }

    /// The size to give queue `index`: the largest power of two not above both the
    /// device's maximum and `preferred` (the split ring needs a power of two, §2.7).
    /// Throws `queueUnavailable` when the device has no such queue.
    public static func queueSize<T: VirtIOTransport>(
        transport: T, index: UInt16, preferred: UInt16
    ) throws(VirtIOError) -> UInt16 {
        let limit = min(transport.queueMax(index), preferred, VirtqueueLayout.maximumSize)
        guard limit != 0 else { throw .queueUnavailable(index) }
        var size: UInt16 = 1
        while size <= limit / 2 { size *= 2 }
        return size
    }

    /// Step 7 for one queue: hands the queue's size and addresses to the device and
    /// enables it. Call after `queue.setUp(memory)` (the rings must be zeroed first).
    public static func activate<T: VirtIOTransport>(transport: T, index: UInt16, queue: SplitVirtqueue) {
        transport.setUpQueue(index, size: queue.size, descriptor: queue.descriptorTable,
                             avail: queue.availRing, used: queue.usedRing)
        transport.enableQueue(index)
    }

    /// Step 8: DRIVER_OK. The device is live from here on.
    public static func finish<T: VirtIOTransport>(transport: T) {
        transport.status = negotiated.union(.driverOK)
    }

    /// Gives up on the device: adds FAILED to its status (§2.1.1). Reset to recover.
    public static func fail<T: VirtIOTransport>(transport: T) {
        transport.status = transport.status.union(.failed)
    }

    /// Whether the device has set DEVICE_NEEDS_RESET (§2.1): it has stopped working and
    /// only a reset and a fresh `initialize` bring it back.
    public static func needsReset<T: VirtIOTransport>(transport: T) -> Bool {
        transport.status.contains(.deviceNeedsReset)
    }
}
