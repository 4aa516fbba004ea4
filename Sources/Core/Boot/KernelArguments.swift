// Numeric kernel arguments (`max-conns=64`, `idle-timeout=60`, `kv-keys=1000`): parsed
// strictly, so a typo is a clear error at start, never a silent default.
//
// Rules for callers: a service that reads one of these and gets an error logs
// `describe(error)` on one line and exits with `.badCommandLine` (status 2).

/// Why a numeric kernel argument was rejected.
public enum KernelArgumentError: Error, Equatable {
    /// The value is not a decimal number (or is missing: `key` alone, `key=`).
    case notANumber(key: String)
    /// A number outside what the argument accepts.
    case outOfRange(key: String, minimum: Int, maximum: Int)

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
        }
    }
}

extension KernelCommandLine {
    /// The value of `key` as a decimal number in `minimum...maximum`; nil when `key` is
    /// absent. Throws for anything else (`key`, `key=`, `key=12x`, out of range).
    public func number(_ key: String, minimum: Int = 0, maximum: Int = Int.max) throws(KernelArgumentError) -> Int? {
        guard let entry = entries.first(where: { KernelCommandLine.same($0.key, key) }) else { return nil }
        guard let text = entry.value, !text.utf8.isEmpty, text.utf8.count <= 18 else { throw .notANumber(key: key) }
        var value = 0
        for byte in text.utf8 {
            guard byte >= 48 && byte <= 57 else { throw .notANumber(key: key) }
            value = value * 10 + Int(byte - 48)
        }
        guard value >= minimum && value <= maximum else {
            throw .outOfRange(key: key, minimum: minimum, maximum: maximum)
        }
        return value
    }
}
