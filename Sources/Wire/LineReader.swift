// Line framing over a byte stream, with a length limit (for line protocols such as kv).
//
// Bytes go in (`append`, or `next(from:)` reading a kernel StreamSocket, in the
// services' SocketServer/LineReaderSocket.swift), events come out: a
// complete line, an over-long line, or the end of the stream. A peer can neither make the
// reader hold more than about `maximumLength` + one read chunk, nor hide a line terminator
// from it: past the limit the line is reported as `.tooLong` at once and its bytes are
// dropped up to and including the next "\n", after which reading resumes normally. The
// service answers `.tooLong` as it likes (an error reply) and goes on.
//
// A line ends at "\n"; a "\r" just before it is dropped too. An unterminated last line
// before the end of the stream is delivered as a line, then `.end`.

/// What `LineReader` found next.
public enum LineEvent: Equatable, Sendable {
    /// A complete line, without its "\n" or "\r\n".
    case line([UInt8])
    /// A line longer than `maximumLength`; its bytes are dropped through the next "\n".
    case tooLong
    /// The stream ended and no bytes are left.
    case end
}

public struct LineReader {
    private static let newline: UInt8 = 0x0A
    private static let carriageReturn: UInt8 = 0x0D

    /// The longest line (without terminator) delivered as `.line`.
    public let maximumLength: Int
    /// Received bytes; those before `start` are consumed.
    private var pending: [UInt8] = []
    private var start = 0
    /// Bytes after `start` already searched for "\n" without success.
    private var scanned = 0
    /// Dropping the rest of an over-long line, up to the next "\n".
    private var discarding = false
    private var ended = false
    /// Scratch buffer for `next(from:)`.
    /// The buffer `next(from:)` reads a socket into (SocketServer/LineReaderSocket.swift).
    public var chunk: [UInt8]

    public init(maximumLength: Int = 1024, chunkSize: Int = 512) {
        precondition(maximumLength > 0 && chunkSize > 0, "LineReader limits")
        self.maximumLength = maximumLength
        chunk = [UInt8](repeating: 0, count: chunkSize)
    }

    /// Adds bytes received from the stream.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 {
            pending.removeSubrange(0 ..< start)
            start = 0
        }
        pending.append(contentsOf: bytes)
    }

    /// Records the end of the stream (a read that returned 0).
    public mutating func finish() { ended = true }

    /// The next event the buffered bytes hold, or nil when more input is needed.
    public mutating func nextEvent() -> LineEvent? {
        if discarding {
            guard let newline = firstNewline(from: start) else {
                start = pending.count
                scanned = 0
                return ended ? .end : nil
            }
            start = newline + 1
            scanned = 0
            discarding = false
        }
        if let newline = firstNewline(from: start + scanned) {
            var end = newline
            if end > start && pending[end - 1] == LineReader.carriageReturn { end -= 1 }
            let line = Array(pending[start ..< end])
            start = newline + 1
            scanned = 0
            return line.count > maximumLength ? .tooLong : .line(line)
        }
        let length = pending.count - start
        scanned = length
        // One byte over the limit is allowed only if it may be the "\r" of a "\r\n".
        if length > maximumLength + 1 || (length == maximumLength + 1 && pending[pending.count - 1] != LineReader.carriageReturn) {
            start = pending.count
            scanned = 0
            discarding = !ended
            return .tooLong
        }
        guard ended else { return nil }
        if length == 0 { return .end }
        let line = Array(pending[start...])
        start = pending.count
        scanned = 0
        return .line(line)
    }

    private func firstNewline(from index: Int) -> Int? {
        var i = index
        while i < pending.count {
            if pending[i] == LineReader.newline { return i }
            i += 1
        }
        return nil
    }
}
