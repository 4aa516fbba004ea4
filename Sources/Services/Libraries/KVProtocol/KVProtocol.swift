// The `kv` service's line protocol (Toro's HashTableServer), as pure values over one
// request line and the table, so the host tests exercise exactly what the kernel runs.
//
//   SET <key> <value>   -> OK | ERROR full  (the value is the rest of the line, spaces kept)
//   GET <key>           -> VALUE <value> | NOT_FOUND
//   DEL <key>           -> DELETED | NOT_FOUND
//   QUIT                -> BYE, and the connection closes
//   SAVE                -> OK | ERROR <reason>: the whole table written to `kv.db` at the
//                          root of the shared folder (KVFile.swift, KVFileIO.swift; the
//                          service runs it, KV.swift); without a folder
//                          `ERROR no shared folder`, on a `:ro` share
//                          `ERROR read-only file system`
//   anything else       -> ERROR <reason>
// Keys are 1-250 bytes without spaces (KVKey); lines end with \n (a \r before it is dropped).
// Bytes are compared as bytes: no Unicode processing in the kernel.
//
// Bounds (KVLimits.swift): a SET that would take the table past `limits.keys` keys or
// `limits.bytes` bytes (each entry counted as key + value + 128), or that the admission
// closure (the kernel's MemoryBudget) does not admit, answers `ERROR full` and changes nothing; replacing a key's value counts
// only the difference against the bytes bound. GET, DEL and the rest go on as before, and
// a DEL makes room again.
//
// Rules for callers: `handle` and `apply` never block and never yield, so a caller may hold
// a lock around them; SAVE is not done here (it blocks on the file system): `apply(.save)`
// answers `ERROR no shared folder`, as the host's kv server does, and the kernel's service
// handles `.save` itself.
import Wire

/// One request line, parsed. The slices point into the line.
public enum KVRequest {
    case set(key: ArraySlice<UInt8>, value: ArraySlice<UInt8>)
    case get(key: ArraySlice<UInt8>)
    case delete(key: ArraySlice<UInt8>)
    case quit
    case save
    /// Not a request: the reply is `ERROR <reason>`.
    case invalid(reason: StaticString)

    /// Parses one line (without its `\n`; a trailing `\r` is dropped).
    public init(parsing line: ArraySlice<UInt8>) {
        var line = line
        if line.last == 13 { line = line.dropLast() }
        let space: UInt8 = 32
        let commandEnd = line.firstIndex(of: space) ?? line.endIndex
        let command = line[line.startIndex..<commandEnd]
        let rest = commandEnd < line.endIndex ? line[(commandEnd + 1)...] : line[line.endIndex...]
        if Self.equal(command, "SET") {
            guard let keyEnd = rest.firstIndex(of: space) else { self = .invalid(reason: "usage: SET key value"); return }
            let key = rest[rest.startIndex..<keyEnd]
            guard KVKey.isValid(key) else { self = .invalid(reason: "bad key"); return }
            self = .set(key: key, value: rest[(keyEnd + 1)...])
        } else if Self.equal(command, "GET") {
            self = KVKey.isValid(rest) ? .get(key: rest) : .invalid(reason: "usage: GET key")
        } else if Self.equal(command, "DEL") {
            self = KVKey.isValid(rest) ? .delete(key: rest) : .invalid(reason: "usage: DEL key")
        } else if Self.equal(command, "QUIT") {
            self = .quit
        } else if Self.equal(command, "SAVE") {
            self = commandEnd == line.endIndex ? .save : .invalid(reason: "usage: SAVE")
        } else {
            self = .invalid(reason: "unknown command")
        }
    }

    /// True for the requests that change the table (SET, DEL).
    public var changesTable: Bool {
        switch self {
        case .set, .delete: return true
        default: return false
        }
    }

    static func equal(_ bytes: ArraySlice<UInt8>, _ word: StaticString) -> Bool {
        word.withUTF8Buffer { bytes.elementsEqual($0) }
    }
}

public struct KVTable {
    public static let maxKey = KVKey.maximumLength
    public private(set) var entries: [[UInt8]: [UInt8]] = [:]
    /// The bounds a SET must stay within.
    public let limits: KVLimits
    /// What the entries cost together (`KVLimits.cost` of each), kept by every change.
    public private(set) var bytes = 0
    /// Asks for `bytes` of memory before a SET allocates (the kernel passes its
    /// `MemoryBudget`; the host's server admits everything). `what` names the work.
    let admit: (_ bytes: Int, _ what: StaticString) -> Bool

    public init(limits: KVLimits = .unlimited,
                admit: @escaping (_ bytes: Int, _ what: StaticString) -> Bool = { _, _ in true }) {
        self.limits = limits
        self.admit = admit
    }

    public var count: Int { entries.count }

    /// Handles one request line (without its terminator). Returns the reply line (with
    /// `\n`) and whether the client asked to quit; SAVE answers `ERROR no shared folder`.
    public mutating func handle(_ line: ArraySlice<UInt8>) -> (reply: [UInt8], quit: Bool) {
        apply(KVRequest(parsing: line))
    }

    /// Carries out a parsed request (SAVE: see the header).
    public mutating func apply(_ request: KVRequest) -> (reply: [UInt8], quit: Bool) {
        switch request {
        case .set(let key, let value):
            return (Self.reply(set(key, value) ? "OK" : "ERROR full"), false)
        case .get(let key):
            guard let value = entries[Array(key)] else { return (Self.reply("NOT_FOUND"), false) }
            return ([UInt8]("VALUE ") + value + [10], false)
        case .delete(let key):
            guard let removed = entries.removeValue(forKey: Array(key)) else { return (Self.reply("NOT_FOUND"), false) }
            bytes -= KVLimits.cost(keyLength: key.count, valueLength: removed.count)
            // A Dictionary never shrinks by itself: give the storage back once empty.
            if entries.isEmpty { entries = [:] }
            return (Self.reply("DELETED"), false)
        case .quit:
            return (Self.reply("BYE"), true)
        case .save:
            return (Self.reply("ERROR no shared folder"), false)
        case .invalid(let reason):
            return (Self.error(reason), false)
        }
    }

    /// Stores `value` under `key` when the bounds and the memory budget allow; false (and
    /// nothing changed) when they do not.
    mutating func set(_ key: ArraySlice<UInt8>, _ value: ArraySlice<UInt8>) -> Bool {
        let cost = KVLimits.cost(keyLength: key.count, valueLength: value.count)
        let keyBytes = Array(key)
        if let index = entries.index(forKey: keyBytes) {
            let oldCost = KVLimits.cost(keyLength: key.count, valueLength: entries.values[index].count)
            guard bytes - oldCost <= limits.bytes - cost else { return false }
            // The new value is allocated before the old one goes: admit all of it.
            guard admit(cost, "a kv value") else { return false }
            entries.values[index] = Array(value)
            bytes += cost - oldCost
            return true
        }
        guard entries.count < limits.keys, bytes <= limits.bytes - cost,
              admit(cost, "a kv entry") else { return false }
        entries[keyBytes] = Array(value)
        bytes += cost
        return true
    }

    /// Replaces the whole table with `entries` (a loaded file), whose cost is `bytes`.
    public mutating func replace(with entries: [[UInt8]: [UInt8]], bytes: Int) {
        self.entries = entries
        self.bytes = bytes
    }

    static func valid(_ key: ArraySlice<UInt8>) -> Bool { KVKey.isValid(key) }

    public static func reply(_ text: StaticString) -> [UInt8] {
        [UInt8](text) + [10]
    }

    /// `ERROR <reason>` and its newline.
    public static func error(_ reason: StaticString) -> [UInt8] {
        [UInt8]("ERROR ") + [UInt8](reason) + [10]
    }
}
