// Splitting a large READ or WRITE into requests no larger than the negotiated maximum
// (`FUSEInitReply.maxWrite` for WRITE; for READ the driver's reply buffer size).
//
// A server may answer a READ short (end of file) or a WRITE short; the caller stops at the
// first short chunk rather than issuing the rest, so the chunks here are a plan, not a
// promise. File offsets are loff_t in Linux: a range reaching past Int64.max is refused.

/// One piece of a split transfer.
public struct FUSEChunk: Equatable, Sendable {
    /// Where the piece starts in the caller's buffer.
    public var bufferOffset: Int
    /// Where it starts in the file.
    public var fileOffset: UInt64
    /// Its length, 1...maximum.
    public var size: UInt32

    public init(bufferOffset: Int, fileOffset: UInt64, size: UInt32) {
        self.bufferOffset = bufferOffset
        self.fileOffset = fileOffset
        self.size = size
    }
}

/// The chunks of `count` bytes at `fileOffset`, in order, each at most `maximum` bytes.
public struct FUSEChunks: Sequence, IteratorProtocol {
    public let count: Int
    public let fileOffset: UInt64
    public let maximum: UInt32
    private var done = 0

    /// Nil when `count` is negative, `maximum` is 0, or the range ends past Int64.max.
    public init?(count: Int, fileOffset: UInt64, maximum: UInt32) {
        guard count >= 0, maximum > 0, fileOffset <= UInt64(Int64.max),
              UInt64(count) <= UInt64(Int64.max) - fileOffset else { return nil }
        self.count = count
        self.fileOffset = fileOffset
        self.maximum = maximum
    }

    /// How many requests the transfer takes (0 for an empty one).
    public var chunkCount: Int {
        let size = Int(maximum)
        return count / size + (count % size == 0 ? 0 : 1)
    }

    public mutating func next() -> FUSEChunk? {
        guard done < count else { return nil }
        let size = Swift.min(count - done, Int(maximum))
        defer { done += size }
        return FUSEChunk(bufferOffset: done, fileOffset: fileOffset + UInt64(done), size: UInt32(size))
    }
}
