// Descriptor exhaustion inside the test process, for the back-ends' "out of descriptors"
// paths: the soft RLIMIT_NOFILE is lowered to just above the highest descriptor open now
// and every free slot below it is filled, so the next open, socket or accept fails with
// EMFILE exactly as in a back-end that has run out. `free` hands slots back; `release`
// closes the rest and restores the limit (call it before asserting: XCTest may need one).
import Glibc

final class DescriptorFiller {
    private(set) var fillers: [Int32] = []
    private var saved = rlimit()
    private var released = false

    init() {
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        getrlimit(resource, &saved)
        var highest: Int32 = 2
        if let dir = opendir("/proc/self/fd") {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if let fd = Int32(name) { highest = max(highest, fd) }
            }
            closedir(dir)
        }
        var lowered = saved
        lowered.rlim_cur = rlim_t(highest + 1)
        setrlimit(resource, &lowered)
        let base = open("/dev/null", O_RDONLY | O_CLOEXEC)
        if base >= 0 { fillers.append(base) }
        while true {
            let fd = fcntl(base, F_DUPFD_CLOEXEC, 0)
            if fd < 0 { break }
            fillers.append(fd)
        }
    }

    /// Hands `count` slots back (the lowest numbered first: what the next open gets).
    func free(_ count: Int) {
        fillers.sort()
        for fd in fillers.prefix(count) { close(fd) }
        fillers.removeFirst(min(count, fillers.count))
    }

    func release() {
        guard !released else { return }
        released = true
        for fd in fillers { close(fd) }
        fillers.removeAll()
        var restore = saved
        setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &restore)
    }

    deinit { release() }
}
