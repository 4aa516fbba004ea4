// The bounds of kv's table and how its memory is counted, shared by the table
// (KVProtocol.swift), the file decoder (KVFileDecoder.swift) and the service, which reads
// them from the kernel arguments (KV.swift):
//
//   * `keys`: how many keys the table may hold.
//   * `bytes`: what all its entries may cost together. An entry costs its key's and its
//     value's bytes plus `entryOverhead` (128): two heap blocks (16-byte header and the
//     array object's 32-byte header each, with size-class slack) and a dictionary slot (two
//     references at a 3/4 load factor, doubled while the dictionary grows). So the bound
//     follows real memory, not just the payload: a flood of 1-byte keys with empty values
//     costs 129 bytes a key, not 1. Measured in the guest: 22,000 entries of 12-13 + 12
//     bytes raised the heap's requested bytes by 113 an entry (so ~88 of overhead before
//     the 16-byte block headers and size-class slack); 128 covers that with some margin.
//
// Rules for callers: nothing here allocates or logs; `unlimited` is for the host's kv
// server (`bench kv`'s yardstick) and for decoding files in tests.

public struct KVLimits: Equatable, Sendable {
    /// The most keys the table may hold.
    public var keys: Int
    /// The most the entries may cost together, in bytes (see `cost`).
    public var bytes: Int

    public init(keys: Int, bytes: Int) {
        self.keys = keys
        self.bytes = bytes
    }

    /// No bound but the machine's.
    public static let unlimited = KVLimits(keys: Int.max, bytes: Int.max)

    /// What one entry costs beyond its key and value bytes (see the header).
    public static let entryOverhead = 128

    /// What an entry with a `keyLength`-byte key and a `valueLength`-byte value costs.
    public static func cost(keyLength: Int, valueLength: Int) -> Int {
        keyLength + valueLength + entryOverhead
    }
}

/// kv's keys: 1-250 bytes without a space (compared as bytes, no Unicode processing).
public enum KVKey {
    public static let maximumLength = 250

    public static func isValid(_ key: ArraySlice<UInt8>) -> Bool {
        !key.isEmpty && key.count <= maximumLength && !key.contains(32)
    }
}
