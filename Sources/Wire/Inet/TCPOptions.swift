// The TCP options walk (RFC 9293 §3.1 "Options", §3.7.1 MSS): what Toro reads from the
// option bytes between the 20-byte fixed header and the data offset.
//
//   kind 0          End of Option List: stop (the rest is padding)
//   kind 1          No-Operation: one byte, skip it
//   kind 2, len 4   Maximum Segment Size: be16 value
//   other kinds     kind, length (≥ 2, counting both bytes), length - 2 bytes of data: skipped
//
// slirp sends and parses only MSS (DESIGN.md, "Legacy I/O facts"); window scaling, SACK and
// timestamps are skipped like any unknown option, which RFC 9293 §3.1 requires be done by
// their length ("MUST be prepared to handle an illegal option length ... without crashing").
//
// Rules for callers: `parse` takes exactly the option bytes (header length - 20). An option
// whose length byte is missing, below 2, or runs past the header, or an MSS whose length is
// not 4, makes the list malformed (RFC 9293: reset the connection, or drop the segment).
// The walk is a loop bounded by the 40 option bytes, never recursion.

/// What the options of one segment say.
public struct TCPOptions: Equatable, Sendable {
    /// The peer's MSS (kind 2), if it sent one (the last one if several).
    public var maximumSegmentSize: UInt16?

    public init(maximumSegmentSize: UInt16? = nil) { self.maximumSegmentSize = maximumSegmentSize }

    /// Walks `bytes`, the option area of a header; nil when the list is malformed.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> TCPOptions? {
        var options = TCPOptions()
        var i = 0
        while i < bytes.count {
            let kind = bytes[i]
            if kind == 0 { break }                         // EOL
            if kind == 1 { i += 1; continue }              // NOP
            guard i + 1 < bytes.count else { return nil }  // no room for the length byte
            let length = Int(bytes[i + 1])
            guard length >= 2 && i + length <= bytes.count else { return nil }
            if kind == 2 {
                guard length == 4 else { return nil }
                options.maximumSegmentSize = BigEndian.load(UInt16.self, from: bytes, at: i + 2)
            }
            i += length
        }
        return options
    }
}
