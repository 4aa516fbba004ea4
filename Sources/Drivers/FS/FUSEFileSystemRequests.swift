// FUSEFileSystem's requests: one FUSE message out through the channel, its reply checked
// by `FUSEReply` and decoded, errors mapped. Called with the file system's lock held, so
// the shared request and reply buffers are used by one request at a time.
import Core
import Drivers
import Wire

extension FUSEFileSystem {
    func takeUnique() -> UInt64 {
        let unique = nextUnique
        nextUnique = nextUnique == UInt64.max ? 1 : nextUnique + 1
        return unique
    }

    /// Sends `request` about `node` and decodes its reply with `decode`.
    @discardableResult
    func call<T>(_ request: FUSERequest, node: UInt64,
                 _ decode: (FUSEReply) throws(FUSEError) -> T) throws(FileSystemError) -> T {
        let answer = try send(request, node: node)
        do throws(FUSEError) { return try decode(answer) } catch { throw failure(error) }
    }

    /// Sends `request` about `node`; returns its reply, header checked. Not generic and
    /// takes no closure, so the image holds one round trip, not one per reply type
    /// (`call` is generic over what the reply decodes to: 15 types).
    @inline(never)
    func send(_ request: FUSERequest, node: UInt64) throws(FileSystemError) -> FUSEReply {
        try exchange(node: node) { (buffer, header) throws(FUSEError) -> Int in
            try request.encode(into: buffer, header: header)
        }
    }

    /// One round trip: `encode` writes the request into the request buffer, the channel
    /// carries it, and the reply's header is checked. The reply points into the reply
    /// buffer: decode it before the next request.
    func exchange(node: UInt64,
                  encode: (UnsafeMutableRawBufferPointer, FUSERequestHeader) throws(FUSEError) -> Int)
        throws(FileSystemError) -> FUSEReply {
        // Before the request buffer is written: a stalled device may still read the last one.
        try channel.prepare()
        let unique = takeUnique()
        lastErrno = 0
        let length: Int
        do {
            length = try encode(request, FUSERequestHeader(unique: unique, nodeID: node))
        } catch .invalidName {
            throw .invalidPath
        } catch {
            throw .nameTooLong
        }
        let count = try channel.exchange(UnsafeRawBufferPointer(rebasing: request[..<length]), reply: reply)
        guard count >= 0 && count <= reply.count else { throw malformed("reply longer than its buffer") }
        do {
            return try FUSEReply(UnsafeRawBufferPointer(rebasing: reply[..<count]), unique: unique)
        } catch {
            throw failure(error)
        }
    }

    /// What a reply that failed its checks, or carried the server's errno, becomes.
    func failure(_ error: FUSEError) -> FileSystemError {
        switch error {
        case .remote(let errno):
            lastErrno = errno
            return FUSEFileSystem.error(errno: errno)
        case .protocolVersion:
            return malformed("the server speaks an older FUSE than 7.31")
        default:
            return malformed("malformed reply")
        }
    }

    func malformed(_ what: StaticString) -> FileSystemError {
        malformedReplies += 1
        Log.timestamp()
        Log.write("virtio-fs: ")
        Log.write(what)
        Log.write("; the request fails with an I/O error\n")
        return .io
    }
}
