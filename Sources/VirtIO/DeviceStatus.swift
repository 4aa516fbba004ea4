// The device status field (virtio 1.2 §2.1): the driver's progress through
// initialisation, and the device's way to say it needs a reset.
//
// Rules for callers (§2.1.1, §3.1.1):
//   * Writing 0 resets the device; the reset is complete when the field reads 0 (§2.4.2).
//   * Otherwise the driver only ever adds bits, in the order of §3.1.1: ACKNOWLEDGE,
//     DRIVER, FEATURES_OK, DRIVER_OK. "The driver MUST NOT clear a device status bit."
//   * The driver sets FAILED when it gives up; it must not rely on the device doing
//     anything after that ("The driver SHOULD NOT rely on completion of operations of a
//     device if DEVICE_NEEDS_RESET is set").
//   * `VirtIODevice` (DeviceBringUp.swift) performs the sequence; drivers do not write
//     the field themselves.

/// The device status bits (§2.1).
public struct DeviceStatus: OptionSet, Equatable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The guest OS has found the device and recognised it as a valid virtio device.
    public static let acknowledge = DeviceStatus(rawValue: 1)
    /// The guest OS knows how to drive the device.
    public static let driver = DeviceStatus(rawValue: 2)
    /// The driver is set up and ready to drive the device.
    public static let driverOK = DeviceStatus(rawValue: 4)
    /// The driver has acknowledged the features it understands; negotiation is complete.
    public static let featuresOK = DeviceStatus(rawValue: 8)
    /// Set by the device: it hit an error it cannot recover from without a reset.
    public static let deviceNeedsReset = DeviceStatus(rawValue: 64)
    /// Set by the driver: something went wrong and it has given up on the device.
    public static let failed = DeviceStatus(rawValue: 128)
}
