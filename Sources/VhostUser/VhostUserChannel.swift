// The vhost-user socket: whole messages in (with their SCM_RIGHTS file descriptors), replies out.
//
// QEMU docs/interop/vhost-user.rst "Communication": a Unix stream socket; each message is
// sent with one sendmsg, file descriptors as ancillary data attached to its first byte,
// so reading the 12-byte header with recvmsg collects them; the payload follows.
// glibc's CMSG_* macros are not visible to Swift, so the x86-64 Linux `struct cmsghdr`
// layout (len: size_t, level: int, type: int, then data, 8-byte aligned) is spelled out.
import Glibc

public final class VhostUserChannel {
    public let fd: Int32

    /// Takes ownership of a connected socket.
    public init(fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    /// Reads and decodes one message. Throws `.closed` at a clean end of stream; on any
    /// throw every descriptor received has been closed.
    public func receive() throws(VhostUserError) -> VhostUserMessage {
        let (headerBytes, fds) = try receiveHeader()
        do throws(VhostUserError) {
            let header = try VhostUserHeader.decode(headerBytes)
            let payload = try readExactly(Int(header.size))
            guard payload.count == Int(header.size) else {
                throw VhostUserError.truncatedPayload(request: header.request, needed: Int(header.size), got: payload.count)
            }
            return try VhostUserMessage.decode(header: header, payload: payload, fds: fds)
        } catch {
            for fd in fds { close(fd) }
            throw error
        }
    }

    /// Sends `bytes` whole (a reply is small: one write normally does it).
    public func send(_ bytes: [UInt8]) throws(VhostUserError) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "send", errno: errno)
            }
            sent += n
        }
    }

    static let cmsgHeaderSize = 16
    static let controlSize = cmsgHeaderSize + VhostUserLimits.maximumFileDescriptors * 4

    /// recvmsg for the header, collecting SCM_RIGHTS descriptors.
    func receiveHeader() throws(VhostUserError) -> ([UInt8], [Int32]) {
        var header = [UInt8](repeating: 0, count: VhostUserLimits.headerSize)
        var control = [UInt8](repeating: 0, count: VhostUserChannel.controlSize)
        var fds: [Int32] = []
        let received: Int = header.withUnsafeMutableBytes { headerBuffer in
            control.withUnsafeMutableBytes { controlBuffer in
                var vector = iovec(iov_base: headerBuffer.baseAddress, iov_len: headerBuffer.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = controlBuffer.baseAddress
                    message.msg_controllen = controlBuffer.count
                    var n: Int
                    repeat { n = recvmsg(fd, &message, Int32(MSG_CMSG_CLOEXEC)) } while n < 0 && errno == EINTR
                    if n >= 0 { fds = VhostUserChannel.parseRights(controlBuffer, length: Int(message.msg_controllen)) }
                    return n
                }
            }
        }
        if received < 0 { throw .io(operation: "recvmsg", errno: errno) }
        if received == 0 { throw .closed }
        if received < header.count {
            do throws(VhostUserError) {
                let rest = try readExactly(header.count - received)
                header.replaceSubrange(received..., with: rest)
                if rest.count < header.count - received { throw VhostUserError.truncatedHeader(got: received + rest.count) }
            } catch {
                for fd in fds { close(fd) }
                throw error
            }
        }
        return (header, fds)
    }

    /// The descriptors in every SCM_RIGHTS control message of `control[0..<length]`.
    static func parseRights(_ control: UnsafeMutableRawBufferPointer, length: Int) -> [Int32] {
        var fds: [Int32] = []
        var offset = 0
        let limit = min(length, control.count)
        while offset + cmsgHeaderSize <= limit {
            let cmsgLength = Int(control.loadUnaligned(fromByteOffset: offset, as: UInt.self))
            let level = control.loadUnaligned(fromByteOffset: offset + 8, as: Int32.self)
            let type = control.loadUnaligned(fromByteOffset: offset + 12, as: Int32.self)
            guard cmsgLength >= cmsgHeaderSize, offset + cmsgLength <= limit else { break }
            if level == SOL_SOCKET && type == Int32(SCM_RIGHTS) {
                var at = offset + cmsgHeaderSize
                while at + 4 <= offset + cmsgLength {
                    fds.append(control.loadUnaligned(fromByteOffset: at, as: Int32.self))
                    at += 4
                }
            }
            offset += (cmsgLength + 7) & ~7
        }
        return fds
    }

    /// `count` bytes, or fewer when the stream ends first.
    func readExactly(_ count: Int) throws(VhostUserError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "recv", errno: errno)
            }
            if n == 0 { return Array(bytes[..<got]) }
            got += n
        }
        return bytes
    }

    /// Sends a message with descriptors attached (the tests' simulated front-end).
    public static func sendMessage(on socket: Int32, _ bytes: [UInt8], fds: [Int32]) -> Bool {
        var control = [UInt8](repeating: 0, count: fds.isEmpty ? 0 : ((cmsgHeaderSize + fds.count * 4 + 7) & ~7))
        if !fds.isEmpty {
            control.withUnsafeMutableBytes { buffer in
                buffer.storeBytes(of: UInt(cmsgHeaderSize + fds.count * 4), toByteOffset: 0, as: UInt.self)
                buffer.storeBytes(of: SOL_SOCKET, toByteOffset: 8, as: Int32.self)
                buffer.storeBytes(of: Int32(SCM_RIGHTS), toByteOffset: 12, as: Int32.self)
                for (index, fd) in fds.enumerated() {
                    buffer.storeBytes(of: fd, toByteOffset: cmsgHeaderSize + index * 4, as: Int32.self)
                }
            }
        }
        var bytes = bytes
        let sent = bytes.withUnsafeMutableBytes { dataBuffer in
            control.withUnsafeMutableBytes { controlBuffer in
                var vector = iovec(iov_base: dataBuffer.baseAddress, iov_len: dataBuffer.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = controlBuffer.count > 0 ? controlBuffer.baseAddress : nil
                    message.msg_controllen = controlBuffer.count
                    return sendmsg(socket, &message, Int32(MSG_NOSIGNAL))
                }
            }
        }
        return sent == bytes.count
    }
}
