// One CPU's sleepers, ordered by deadline: a binary min-heap (Williams 1964; CLRS ch. 6).
//
// Every entry carries its deadline (nanoseconds on the CPU's monotonic clock) and a
// sequence number taken from a per-queue counter at insertion. Entries are ordered by
// (deadline, sequence), a strict total order, so sleepers with equal deadlines wake in
// the order they went to sleep and every run of the same inputs wakes them in the same
// order: the scheduler stays deterministic, which the differential tests rely on.
//
// Costs: `insert` and `popExpired` O(log n); `nextDeadline` O(1); `remove` O(n) to find
// the entry (by identity) plus O(log n) to repair the heap.
//
// Rules for callers:
//   * A timer queue belongs to one CPU; only that CPU touches it (no lock). Not
//     interrupt-safe: the timer interrupt should only note that time passed; the
//     scheduler loop calls `popExpired(now:)` until it returns nil.
//   * The queue holds one strong reference per entry, dropped when the entry leaves
//     through `popExpired`, `remove` or `removeAll`.
//   * Inserting an object that is already queued gives it two entries; a thread that is
//     woken early (by a message or a signal) must be `remove`d by its waker.
//   * Deadlines are absolute; a deadline already in the past is allowed and simply
//     expires at the next `popExpired`.

/// Objects waiting for a deadline (UInt64 nanoseconds), earliest first, ties in
/// insertion order.
public struct TimerQueue<Element: AnyObject> {
    private struct Entry {
        var deadline: UInt64
        var sequence: UInt64
        var element: Element

        /// The heap order: earlier deadline first, then earlier insertion.
        func precedes(_ other: Entry) -> Bool {
            deadline != other.deadline ? deadline < other.deadline : sequence < other.sequence
        }
    }

    /// Heap-ordered: no entry precedes its parent (`heap[(i - 1) / 2]`), so `heap[0]` is
    /// the earliest.
    private var heap: [Entry] = []
    /// The next insertion's sequence number (64 bits: never wraps in practice).
    private var nextSequence: UInt64 = 0

    /// The capacity reserved at creation (and restored when the queue empties after
    /// growing past it), so a burst of sleepers (every connection's thread waiting with a
    /// timeout) does not leave the heap's figures higher than before it.
    private let reserved: Int

    public init(reservingCapacity reserved: Int = 0) {
        self.reserved = reserved
        heap.reserveCapacity(reserved)
    }

    /// Number of queued entries.
    public var count: Int { heap.count }

    /// True when nobody sleeps.
    public var isEmpty: Bool { heap.isEmpty }

    /// The earliest deadline, to program the CPU's timer; nil when nobody sleeps.
    public var nextDeadline: UInt64? { heap.first?.deadline }

    /// Queues `element` to expire at `deadline`.
    public mutating func insert(_ element: Element, deadline: UInt64) {
        heap.append(Entry(deadline: deadline, sequence: nextSequence, element: element))
        nextSequence &+= 1
        siftUp(heap.count - 1)
    }

    /// Removes and returns the earliest entry whose deadline is at or before `now`
    /// (ties: the earliest inserted); nil when none has expired.
    public mutating func popExpired(now: UInt64) -> Element? {
        guard let earliest = heap.first, earliest.deadline <= now else { return nil }
        return removeEntry(at: 0).element
    }

    /// True when `element` (by identity) is queued.
    public func contains(_ element: Element) -> Bool {
        index(of: element) != nil
    }

    /// The deadline of `element`'s earliest entry; nil when it is not queued.
    public func deadline(of element: Element) -> UInt64? {
        index(of: element).map { heap[$0].deadline }
    }

    /// Removes `element`'s earliest entry (by identity); false when it is not queued.
    @discardableResult
    public mutating func remove(_ element: Element) -> Bool {
        guard let position = index(of: element) else { return false }
        _ = removeEntry(at: position)
        return true
    }

    /// Drops every entry (and the queue's references).
    public mutating func removeAll() {
        heap.removeAll(keepingCapacity: true)
    }

    // MARK: Heap

    /// Index of `element`'s earliest entry (there is usually one).
    private func index(of element: Element) -> Int? {
        var found: Int? = nil
        var i = 0
        while i < heap.count {
            if heap[i].element === element, found.map({ heap[i].precedes(heap[$0]) }) ?? true { found = i }
            i += 1
        }
        return found
    }

    /// Takes out `heap[position]`: the last entry fills the hole and moves up or down.
    private mutating func removeEntry(at position: Int) -> Entry {
        let last = heap.removeLast()
        if heap.isEmpty && heap.capacity > max(reserved, 16) {
            heap = []
            heap.reserveCapacity(reserved)
        }
        guard position < heap.count else { return last }
        let removed = heap[position]
        heap[position] = last
        if position > 0 && heap[position].precedes(heap[(position - 1) / 2]) {
            siftUp(position)
        } else {
            siftDown(position)
        }
        return removed
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            var smallest = left
            let right = left + 1
            if right < heap.count && heap[right].precedes(heap[left]) { smallest = right }
            guard heap[smallest].precedes(heap[parent]) else { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
