// The receive ring asks the kernel's memory budget before it grows; the fuzz target has
// no kernel heap, so every growth is admitted (the host's allocator answers).
enum MemoryBudget {
    static func admit(_ bytes: Int, for what: StaticString) -> Bool { true }
    static func grow(_ bytes: Int, for what: StaticString) -> Bool { true }
}
