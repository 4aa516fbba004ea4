// One CPU's run queue: the threads that are ready to run, first in, first out.
//
// A ring buffer over an `Array` of optionals: `head` is the index of the oldest element
// and the live elements are the `count` slots after it (modulo the capacity, a power of
// two, so wrapping is a mask). A push into a full ring doubles the storage and unrolls
// the ring into it, so push and pop are O(1) amortised; `remove` is O(n) (a thread that
// blocks or exits while runnable is rare, and run queues are short).
//
// Rules for callers:
//   * A run queue belongs to one CPU (Toro never migrates a thread): only that CPU
//     touches it, so there is no lock. Another CPU that wants a thread to run here asks
//     through the `MailboxMatrix`, and this CPU pushes it.
//   * Not interrupt-safe: an interrupt handler must not push while the scheduler loop
//     is inside a call (defer the wake-up to the loop, or mask interrupts around it).
//   * The queue holds one strong reference per entry: `pop` and `remove` hand it back
//     (or drop it), and the vacated slot is cleared, so no thread outlives its queue
//     entry by accident. Pushing the same object twice gives two entries.
//   * Growing allocates from the heap; `init(initialCapacity:)` sizes the ring up front
//     for a scheduler that must not allocate on its hot path.

/// First-in, first-out queue of runnable objects for one CPU; identity (`===`) removal.
public struct RunQueue<Element: AnyObject> {
    /// The ring; `nil` outside the live window. `storage.count` is a power of two.
    private var storage: [Element?]
    /// Index of the oldest element (the next `pop`).
    private var head = 0
    /// Number of live elements.
    public private(set) var count = 0

    /// An empty queue whose ring holds `initialCapacity` elements (rounded up to a power
    /// of two, at least 4) before it first grows.
    public init(initialCapacity: Int = 16) {
        var capacity = 4
        while capacity < initialCapacity { capacity &<<= 1 }
        storage = Array(repeating: nil, count: capacity)
    }

    /// True when no element is queued.
    public var isEmpty: Bool { count == 0 }

    /// Elements the ring holds before the next push allocates.
    public var capacity: Int { storage.count }

    /// The oldest element (the one `pop` would return), left in place.
    public var first: Element? { count == 0 ? nil : storage[head] }

    /// Appends `element` at the tail.
    public mutating func push(_ element: Element) {
        if count == storage.count { grow() }
        storage[slot(count)] = element
        count += 1
    }

    /// Removes and returns the oldest element; nil when empty.
    public mutating func pop() -> Element? {
        guard count > 0 else { return nil }
        let element = storage[head]
        storage[head] = nil  // the queue's reference goes with the returned value
        head = (head + 1) & (storage.count - 1)
        count -= 1
        return element
    }

    /// True when `element` (by identity) is queued.
    public func contains(_ element: Element) -> Bool {
        index(of: element) != nil
    }

    /// Removes the oldest entry identical (`===`) to `element`, keeping the others in
    /// order; false when it is not queued.
    @discardableResult
    public mutating func remove(_ element: Element) -> Bool {
        guard let position = index(of: element) else { return false }
        // Close the gap by moving the younger entries one slot towards the head.
        var i = position
        while i + 1 < count {
            storage[slot(i)] = storage[slot(i + 1)]
            i += 1
        }
        storage[slot(count - 1)] = nil
        count -= 1
        return true
    }

    /// Drops every entry (and the queue's references), keeping the storage.
    public mutating func removeAll() {
        while count > 0 { _ = pop() }
        head = 0
    }

    // MARK: Private

    /// Storage index of the element `offset` places after the head.
    private func slot(_ offset: Int) -> Int {
        (head + offset) & (storage.count - 1)
    }

    /// Offset from the head of the first entry identical to `element`.
    private func index(of element: Element) -> Int? {
        var i = 0
        while i < count {
            if storage[slot(i)] === element { return i }
            i += 1
        }
        return nil
    }

    /// Doubles the ring, unrolling the live window to start at index 0.
    private mutating func grow() {
        var larger: [Element?] = Array(repeating: nil, count: storage.count * 2)
        var i = 0
        while i < count {
            larger[i] = storage[slot(i)]
            i += 1
        }
        storage = larger  // the old ring's references are released with it
        head = 0
    }
}
