// A descriptor chain as the device side received it (virtio 1.2 §2.7.5, §2.7.4): the
// head id to return in the used ring, and a private copy of its validated segments.
//
// `DeviceQueue.popAvailable` builds it after checking every descriptor (in range, inside
// guest memory, no loop, no indirect table, readable before writable), and copies each
// descriptor exactly once: a driver that rewrites the descriptor table afterwards cannot
// change what the device reads or writes (no time-of-check/time-of-use gap).
//
// Rules for callers:
//   * Read only the readable part and write only the writable part (§2.7.5.1: "A device
//     MUST NOT write to a device-readable buffer"); the helpers below do exactly that.
//   * Return the chain once, with `DeviceQueue.addUsed(memory, head: chain.head,
//     length: bytesWritten)`; the length counts bytes written from the start of the
//     writable part (§2.7.8).
//   * The buffers belong to the driver again after `addUsed`: keep no copy of the
//     addresses beyond it.

/// One descriptor of a chain: a guest-physical buffer and who may write it.
public struct DescriptorSegment: Equatable, Sendable {
    /// Guest-physical address of the buffer.
    public var address: UInt64
    /// Bytes in the buffer.
    public var length: UInt32
    /// Device-writable (VIRTQ_DESC_F_WRITE); otherwise device-readable.
    public var isWritable: Bool

    public init(address: UInt64, length: UInt32, isWritable: Bool) {
        self.address = address
        self.length = length
        self.isWritable = isWritable
    }
}

/// A validated descriptor chain popped from the available ring.
public struct DescriptorChain: Equatable, Sendable {
    /// The head descriptor index: the id to return in the used ring.
    public let head: UInt16
    /// The chain's descriptors in order: readable ones, then writable ones.
    public let segments: [DescriptorSegment]
    /// Total bytes of the device-readable segments.
    public let readableBytes: UInt64
    /// Total bytes of the device-writable segments.
    public let writableBytes: UInt64

    /// A chain of validated segments (readable ones first). `DeviceQueue` builds these;
    /// tests may too.
    public init(head: UInt16, segments: [DescriptorSegment]) {
        self.head = head
        self.segments = segments
        var readable: UInt64 = 0
        var writable: UInt64 = 0
        for segment in segments {
            if segment.isWritable { writable += UInt64(segment.length) } else { readable += UInt64(segment.length) }
        }
        readableBytes = readable
        writableBytes = writable
    }

    /// Copies readable bytes, starting `offset` bytes into the readable part, into
    /// `buffer`; returns how many were copied (short when the readable part ends).
    /// Throws `bufferOutsideMemory` when guest memory no longer holds a segment.
    public func readReadable(
        _ memory: some GuestMemory, at offset: UInt64 = 0, into buffer: UnsafeMutableRawBufferPointer
    ) throws(VirtqueueError) -> Int {
        var skip = offset
        var copied = 0
        for segment in segments where !segment.isWritable {
            if copied == buffer.count { break }
            let length = UInt64(segment.length)
            if skip >= length { skip -= length; continue }
            let n = Int(min(length - skip, UInt64(buffer.count - copied)))
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer[copied ..< copied + n])
            guard memory.read(at: segment.address + skip, into: target) else { throw .bufferOutsideMemory }
            copied += n
            skip = 0
        }
        return copied
    }

    /// Copies `buffer` into the writable part, starting `offset` bytes into it; returns
    /// how many bytes were written (short when the writable part ends).
    /// Throws `bufferOutsideMemory` when guest memory no longer holds a segment.
    public func writeWritable(
        _ memory: some GuestMemory, at offset: UInt64 = 0, from buffer: UnsafeRawBufferPointer
    ) throws(VirtqueueError) -> Int {
        var skip = offset
        var written = 0
        for segment in segments where segment.isWritable {
            if written == buffer.count { break }
            let length = UInt64(segment.length)
            if skip >= length { skip -= length; continue }
            let n = Int(min(length - skip, UInt64(buffer.count - written)))
            let source = UnsafeRawBufferPointer(rebasing: buffer[written ..< written + n])
            guard memory.write(at: segment.address + skip, from: source) else { throw .bufferOutsideMemory }
            written += n
            skip = 0
        }
        return written
    }

    /// The whole readable part as bytes (for small requests: headers, commands).
    public func readableContents(_ memory: some GuestMemory) throws(VirtqueueError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Int(readableBytes))
        // Array's closure-taking methods rethrow untyped errors; carry the typed one out.
        let copied: Result<Int, VirtqueueError> = bytes.withUnsafeMutableBytes { raw in
            do throws(VirtqueueError) { return .success(try readReadable(memory, into: raw)) } catch { return .failure(error) }
        }
        let count = try copied.get()
        return count == bytes.count ? bytes : Array(bytes[0 ..< count])
    }
}
