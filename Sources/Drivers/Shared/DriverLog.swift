// What every driver does when its device cannot be used: the transport-neutral forms of
// "give up at bring-up" and "the device broke the protocol", each one log line.
import Core
import VirtIO

extension VirtIOTransport {
    /// Resets a device the driver gives up on (status 0: it stops using every buffer it was
    /// given, §2.4), reading the status back at most 1000 times and without pausing, since
    /// callers hold their lock. A device that never reads 0 is left so: it was failed anyway.
    public func resetAfterFailure() {
        status = DeviceStatus(rawValue: 0)
        var reads = 0
        while status.rawValue != 0 && reads < 1000 { reads += 1 }
    }

    /// Marks the device FAILED (virtio 1.2 §2.1.2) and logs why its driver left it unused.
    public func giveUp(_ message: StaticString) {
        VirtIODevice.fail(transport: self)
        Log.timestamp()
        Log.write(message)
    }
}

public enum DriverLog {
    /// The one log line a driver writes when its device breaks the protocol:
    /// `<device>: device failed: <reason>`.
    public static func failure(_ device: StaticString, _ reason: StaticString) {
        Log.timestamp()
        Log.write(device)
        Log.write(": device failed: ")
        Log.write(reason)
        Log.put(10)
    }
}
