// A scripted stream socket: Core's `StreamSocket` fed from a script of reads, for testing
// what runs over the socket API (LineReader, static-web's handler) without a network.
//
// A read hands out the next scripted chunk, or as much of it as fits the caller's buffer
// (the rest stays first in line); when the script is used up it throws `failure`, or
// returns 0 (end of stream) when there is none. A write takes at most `writeLimit` bytes a
// call, 7,000 unless told (so a writer's partial-write loop runs), and appends them to
// `written`. Once closed, reads and writes throw `.closed`, as a closed socket's do.
//
// Rules for callers: a class (the code under test and the test hold the same socket); one
// test thread.
import Core

public final class ScriptedSocket: StreamSocket {
    /// The chunks still to be read, in order.
    public var chunks: [[UInt8]]
    /// Thrown once the chunks are used up (nil: end of stream instead).
    public var failure: SocketError?
    /// Everything written so far.
    public private(set) var written: [UInt8] = []
    /// The most one write takes.
    public var writeLimit: Int
    /// Read calls so far.
    public private(set) var reads = 0
    /// Whether `close` was called.
    public private(set) var closed = false

    public init(_ chunks: [[UInt8]], failure: SocketError? = nil, writeLimit: Int = 7000) {
        self.chunks = chunks
        self.failure = failure
        self.writeLimit = writeLimit
    }

    /// One chunk: the UTF-8 bytes of `text`.
    public convenience init(_ text: String, writeLimit: Int = 7000) {
        self.init([Array(text.utf8)], writeLimit: writeLimit)
    }

    /// What was written, as UTF-8 text.
    public var text: String { String(decoding: written, as: UTF8.self) }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int {
        reads += 1
        guard !closed else { throw .closed }
        guard !chunks.isEmpty else {
            if let failure { throw failure }
            return 0
        }
        var chunk = chunks.removeFirst()
        let count = min(chunk.count, buffer.count)
        for i in 0 ..< count { buffer[i] = chunk[i] }
        chunk.removeFirst(count)
        if !chunk.isEmpty { chunks.insert(chunk, at: 0) }
        return count
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(SocketError) -> Int {
        guard !closed else { throw .closed }
        let count = min(bytes.count, writeLimit)
        written += bytes[0 ..< count]
        return count
    }

    public func close() { closed = true }
}
