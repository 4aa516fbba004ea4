// The `kv` service's line protocol (Toro's HashTableServer), as a pure function over one
// request line and the table, so the host tests exercise exactly what the kernel runs.
//
//   SET <key> <value>   -> OK              (the value is the rest of the line, spaces kept)
//   GET <key>           -> VALUE <value> | NOT_FOUND
//   DEL <key>           -> DELETED | NOT_FOUND
//   QUIT                -> BYE, and the connection closes
//   anything else       -> ERROR <reason>
// Keys are 1-250 bytes without spaces; lines end with \n (a \r before it is dropped).
// Bytes are compared as bytes: no Unicode processing in the kernel.

public struct KVTable {
    public static let maxKey = 250
    public private(set) var entries: [[UInt8]: [UInt8]] = [:]
    public init() {}

    public var count: Int { entries.count }

    /// Handles one request line (without its terminator). Returns the reply line (with
    /// `\n`) and whether the client asked to quit.
    public mutating func handle(_ line: ArraySlice<UInt8>) -> (reply: [UInt8], quit: Bool) {
        var line = line
        if line.last == 13 { line = line.dropLast() }
        let space: UInt8 = 32
        let commandEnd = line.firstIndex(of: space) ?? line.endIndex
        let command = line[line.startIndex..<commandEnd]
        let rest = commandEnd < line.endIndex ? line[(commandEnd + 1)...] : line[line.endIndex...]
        switch Array(command) {
        case Array("SET".utf8):
            guard let keyEnd = rest.firstIndex(of: space) else { return (Self.reply("ERROR usage: SET key value"), false) }
            let key = rest[rest.startIndex..<keyEnd]
            guard Self.valid(key) else { return (Self.reply("ERROR bad key"), false) }
            entries[Array(key)] = Array(rest[(keyEnd + 1)...])
            return (Self.reply("OK"), false)
        case Array("GET".utf8):
            guard Self.valid(rest) else { return (Self.reply("ERROR usage: GET key"), false) }
            guard let value = entries[Array(rest)] else { return (Self.reply("NOT_FOUND"), false) }
            return (Array("VALUE ".utf8) + value + [10], false)
        case Array("DEL".utf8):
            guard Self.valid(rest) else { return (Self.reply("ERROR usage: DEL key"), false) }
            let removed = entries.removeValue(forKey: Array(rest)) != nil
            // A Dictionary never shrinks by itself: give the storage back once empty.
            if entries.isEmpty { entries = [:] }
            return (Self.reply(removed ? "DELETED" : "NOT_FOUND"), false)
        case Array("QUIT".utf8):
            return (Self.reply("BYE"), true)
        default:
            return (Self.reply("ERROR unknown command"), false)
        }
    }

    static func valid(_ key: ArraySlice<UInt8>) -> Bool {
        !key.isEmpty && key.count <= maxKey && !key.contains(32)
    }

    static func reply(_ text: StaticString) -> [UInt8] {
        text.withUTF8Buffer { Array($0) } + [10]
    }
}
