// A test-and-test-and-set spin lock over `Synchronization.Atomic`.
//
// Rules for callers:
//   * Hold it briefly and never across anything that can allocate from the heap or
//     block: the only user is the shared page-frame allocator, whose critical sections
//     are a list walk.
//   * Not reentrant, and not interrupt-safe: an interrupt handler that takes a lock its
//     CPU already holds deadlocks. Kernel code must not allocate in interrupt handlers.
//   * It is `~Copyable` (an atomic must stay at one address); place it in static storage
//     or in RAM through an `UnsafeMutablePointer`.
import Synchronization

public struct SpinLock: ~Copyable {
    private let word = Atomic<UInt32>(0)

    public init() {}

    public func lock() {
        // Acquire pairs with the release in `unlock`: what the previous holder wrote
        // inside the critical section is visible to the next holder.
        while !word.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
            // Spin on a plain load so waiting CPUs share the cache line read-only.
            while word.load(ordering: .relaxed) != 0 {}
        }
    }

    public func unlock() {
        word.store(0, ordering: .releasing)
    }
}
