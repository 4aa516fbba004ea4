// Kernel arguments with values (`max-conns=64`, `idle-timeout=60`, `ip=10.0.2.15/24`): parsed
// strictly, so a typo is a clear error at start, never a silent default.
//
// Rules for callers: a service that reads one of these and gets an error logs
// `describe(error)` on one line and exits with `.badCommandLine` (status 2).

/// Why a numeric kernel argument was rejected.
public enum KernelArgumentError: Error, Equatable {
    /// The value is not a decimal number (or is missing: `key` alone, `key=`).
    case notANumber(key: StaticString)
    /// A number outside what the argument accepts.
    case outOfRange(key: StaticString, minimum: Int, maximum: Int)
    /// A value of another shape than numbers (an address, `ip=10.0.2.15/24`) that does not
    /// parse or does not make sense; `reason` completes `kernel argument KEY ...`.
    case invalid(key: StaticString, reason: StaticString)

    /// Keys compare by their bytes (StaticString is not Equatable).
    public static func == (a: KernelArgumentError, b: KernelArgumentError) -> Bool {
        switch (a, b) {
        case (.notANumber(let x), .notANumber(let y)):
            return same(x, y)
        case (.outOfRange(let x, let xMinimum, let xMaximum), .outOfRange(let y, let yMinimum, let yMaximum)):
            return same(x, y) && xMinimum == yMinimum && xMaximum == yMaximum
        case (.invalid(let x, let xReason), .invalid(let y, let yReason)):
            return same(x, y) && same(xReason, yReason)
        default:
            return false
        }
    }

    static func same(_ x: StaticString, _ y: StaticString) -> Bool {
        x.withUTF8Buffer { x in y.withUTF8Buffer { y in x.elementsEqual(y) } }
    }

    /// Logs `kernel argument KEY: ...` (no newline).
    public func describe() {
        switch self {
        case .notANumber(let key):
            Log.write("kernel argument ")
            Log.write(key)
            Log.write(" needs a decimal number")
        case .outOfRange(let key, let minimum, let maximum):
            Log.write("kernel argument ")
            Log.write(key)
            Log.write(" must be between ")
            Log.decimal(minimum)
            Log.write(" and ")
            Log.decimal(maximum)
        case .invalid(let key, let reason):
            Log.write("kernel argument ")
            Log.write(key)
            Log.write(" ")
            Log.write(reason)
        }
    }
}

extension KernelCommandLine {
    /// The value of `key` as a decimal number in `minimum...maximum`; nil when `key` is
    /// absent. Throws for anything else (`key`, `key=`, `key=12x`, out of range).
    public func number(_ key: StaticString, minimum: Int = 0, maximum: Int = Int.max) throws(KernelArgumentError) -> Int? {
        guard let entry = entry(key) else { return nil }
        guard let text = entry.value, !text.isEmpty, text.count <= 18 else { throw .notANumber(key: key) }
        var value = 0
        for byte in text {
            guard byte >= 48 && byte <= 57 else { throw .notANumber(key: key) }
            value = value * 10 + Int(byte - 48)
        }
        guard value >= minimum && value <= maximum else {
            throw .outOfRange(key: key, minimum: minimum, maximum: maximum)
        }
        return value
    }
}
