// What every driver does when its device cannot be used: the transport-neutral forms of
// "give up at bring-up" and "the device broke the protocol", each one log line.
import Core
import VirtIO

extension VirtIOTransport {
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
