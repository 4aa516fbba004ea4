// Host-socket helpers for every test that runs a host back-end in-process: pumping a
// device's host-socket events as VhostUserServer's loop does, temporary folders for Unix
// sockets, blocking clients, and a watchdog for a FIFO a back-end must never block on.
// Shared by VhostUserTests (against a simulated guest) and DriverDeviceTests (against the
// real guest drivers).
//
// Rules for callers: one test thread drives the device; a client may be read or written
// from another thread (a large transfer would otherwise fill the socket and stall the test).
import Dispatch
import Glibc
import VhostUser
import XCTest

/// Runs the device's host-socket events until nothing is ready for `quiet` seconds, through
/// HostSidePoller as VhostUserServer does (so VsockDevice's methods, not the protocol's
/// "nothing" defaults, must answer).
public func pump<Host: HostSidePoller>(_ device: Host, quiet: Double = 0.05, limit: Double = 3) {
    let end = VsockDevice.now() + limit
    var idleSince = VsockDevice.now()
    while VsockDevice.now() < end {
        var entries = device.pollEntries()
        let n = poll(&entries, nfds_t(entries.count), 10)
        if n > 0 {
            for entry in entries where entry.revents != 0 {
                device.handleEvent(fd: entry.fd, revents: entry.revents, now: VsockDevice.now())
            }
            idleSince = VsockDevice.now()
        } else if VsockDevice.now() - idleSince > quiet {
            break
        }
        device.expire(now: VsockDevice.now())
    }
}

/// A temporary directory, removed by the returned closure.
public func temporaryDirectory() -> String {
    var template = Array("/tmp/vhostuser-test.XXXXXX".utf8CString)
    let path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    return path
}

public func removeDirectory(_ path: String) {
    if let dir = opendir(path) {
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { unlink(path + "/" + name) }
        }
        closedir(dir)
    }
    rmdir(path)
}

/// Opens the FIFO at `path` (read and write, for 0.2 s) after `seconds`, from another
/// thread, so a back-end that wrongly blocked opening it is let go and its test fails on
/// time instead of hanging the suite. Cancel the returned item when the test is done.
public func fifoWatchdog(_ path: String, after seconds: Double = 3) -> DispatchWorkItem {
    let watchdog = DispatchWorkItem {
        let fd = open(path, O_RDWR | O_NONBLOCK)
        if fd >= 0 { usleep(200_000); close(fd) }
    }
    DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: watchdog)
    return watchdog
}

/// Connects a blocking client to the Unix socket at `path`.
public func unixClient(_ path: String) throws -> Int32 {
    let fd = try XCTUnwrap(Posix.connectUnix(path: path), "connect \(path)")
    let flags = fcntl(fd, F_GETFL)
    _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
    return fd
}

/// Writes all of `bytes` to a blocking socket.
public func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var sent = 0
    while sent < bytes.count {
        let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { XCTFail("write failed: errno \(errno)"); return }
        sent += n
    }
}

/// Reads what arrives within `timeout` seconds (until EOF, `count` bytes, or silence).
public func readAvailable(_ fd: Int32, count: Int = 1 << 20, timeout: Double = 1) -> (bytes: [UInt8], eof: Bool) {
    var bytes: [UInt8] = []
    let end = VsockDevice.now() + timeout
    while bytes.count < count && VsockDevice.now() < end {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, 20) > 0 else { continue }
        switch Posix.readSome(fd, limit: count - bytes.count) {
        case .data(let data): bytes += data
        case .endOfStream: return (bytes, true)
        case .failed: return (bytes, true)
        case .wouldBlock: continue
        }
    }
    return (bytes, false)
}
