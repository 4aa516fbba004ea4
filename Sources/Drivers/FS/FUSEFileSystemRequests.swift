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
        try exchange(node: node, encode: { (buffer, header) throws(FUSEError) -> Int in
            try request.encode(into: buffer, header: header)
        }, decode: decode)
    }

    func exchange<T>(node: UInt64,
                     encode: (UnsafeMutableRawBufferPointer, FUSERequestHeader) throws(FUSEError) -> Int,
                     decode: (FUSEReply) throws(FUSEError) -> T) throws(FileSystemError) -> T {
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
            let answer = try FUSEReply(UnsafeRawBufferPointer(rebasing: reply[..<count]), unique: unique)
            return try decode(answer)
        } catch .remote(let errno) {
            lastErrno = errno
            throw FUSEFileSystem.error(errno: errno)
        } catch .protocolVersion {
            throw malformed("the server speaks an older FUSE than 7.31")
        } catch {
            throw malformed("malformed reply")
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
