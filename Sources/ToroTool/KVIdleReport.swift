// The kv service's idle heap report, read by the kv boot test from the guest's console.

/// The kernel's `kv: idle, heap in use B bytes in N allocations, K keys` log line.
public struct KVIdleReport: Equatable, Sendable {
    public var bytes: Int
    public var allocations: Int
    public var keys: Int

    public init(bytes: Int, allocations: Int, keys: Int) {
        self.bytes = bytes
        self.allocations = allocations
        self.keys = keys
    }

    /// Parses a console line (timestamped or not); nil when it is not such a report.
    public static func parse(_ line: String) -> KVIdleReport? {
        let text = KernelLog.stripTimestamp(Substring(line)).map(String.init) ?? line
        guard text.hasPrefix("kv: idle, heap in use ") else { return nil }
        let words = text.split(separator: " ")
        // kv: idle, heap in use B bytes in N allocations, K keys   (12 words)
        guard words.count == 12, words[6] == "bytes", words[7] == "in", words[9] == "allocations,", words[11] == "keys",
              let bytes = Int(words[5]), let allocations = Int(words[8]), let keys = Int(words[10]) else {
            return nil
        }
        return KVIdleReport(bytes: bytes, allocations: allocations, keys: keys)
    }
}
