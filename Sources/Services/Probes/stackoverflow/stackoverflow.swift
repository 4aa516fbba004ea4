// `stackoverflow`: a thread recurses without bound. Its stack ends at an unmapped guard
// page, so the overflow is a page fault that the exception report names, and the kernel
// exits with status 3 instead of corrupting memory below the stack.
import Core

@_silgen_name("toro_service")
public func service() -> Service {
    Service(name: "stackoverflow",
            summary: "a thread recurses forever: its guard page faults, the report names it, exit 3",
            devices: []) { StackOverflow.run($0) }
}

enum StackOverflow {
    static func run(_ context: ServiceContext) -> ExitStatus {
        context.ready()
        Log.write("stackoverflow: recursing in a thread with a 32 KiB stack\n")
        let handle = Scheduler.spawn { _ = recurse(1) }
        handle?.join()
        Log.write("stackoverflow: the recursion returned (the guard page did not fault)\n")
        return .serviceFailed
    }

    /// Keeps 256 bytes per frame live so the optimizer cannot turn this into a loop.
    @inline(never)
    static func recurse(_ depth: UInt64) -> UInt64 {
        var buffer = (depth, depth, depth, depth, depth, depth, depth, depth,
                      depth, depth, depth, depth, depth, depth, depth, depth)
        let sum = withUnsafeMutableBytes(of: &buffer) { bytes -> UInt64 in
            bytes.storeBytes(of: depth &* 3, toByteOffset: 8, as: UInt64.self)
            return depth == 0 ? 0 : recurse(depth &+ bytes.load(fromByteOffset: 8, as: UInt64.self) % 2 &+ 1)
        }
        return sum &+ buffer.1
    }
}
