// Cross-CPU mailboxes: Toro's matrix of slots, one lock-free ring per ordered CPU pair.
//
// CPU `s` talks to CPU `d` only through ring[s][d], which has exactly one producer (a
// thread running on `s`) and one consumer (the scheduler of `d`). That is Lamport's
// single-producer/single-consumer queue (L. Lamport, "Specifying Concurrent Program
// Modules", TOPLAS 5(2), 1983), which needs no lock and no read-modify-write atomic:
// each index has one writer. The indices are free-running counters (slot = index & mask,
// as in Linux's kfifo), so all `capacity` slots are usable: empty when tail == head,
// full when tail - head == capacity.
//
// Memory ordering (C++11/Swift model, as in `Synchronization.Atomic`):
//   * Producer: write the slot, then store `tail` with release. Consumer: load `tail`
//     with acquire, then read the slot. Release/acquire on `tail` makes the slot write
//     happen-before the slot read: the consumer never sees a half-written message.
//   * Consumer: read the slot, then store `head` with release. Producer: load `head`
//     with acquire before overwriting that slot. This orders the consumer's read before
//     the producer's next write to the same slot (no write-after-read race).
//   * Each side loads its own index relaxed (it is the only writer) and keeps a private
//     copy of the other side's index, refreshed (with acquire) only when the ring looks
//     full or empty, so the common case does not read the line the other side keeps
//     writing (the index caching of rigtorp's SPSCQueue).
// On x86-64 (TSO) acquire loads and release stores compile to plain moves; what they
// buy there is that the compiler may not reorder the slot access across them.
//
// Rules for callers:
//   * `MailboxRing.trySend` only from the one producer, `tryReceive` only from the one
//     consumer. `count`, `isEmpty` are safe from anywhere but only a snapshot.
//   * `MailboxMatrix.send(from: s, to: d, _)` only from code running on CPU `s` (with
//     interrupts that might also send on `s` masked), `receive(at: d)` only on CPU `d`.
//   * A full ring refuses the message (`false`) and the caller keeps it: retry later,
//     typically after serving your own inbox so two CPUs sending to each other cannot
//     deadlock.
//   * `Message.object` transfers ownership: the sender passes a +1 reference
//     (`Unmanaged.passRetained(x).toOpaque()`), the receiver takes it
//     (`Unmanaged<T>.fromOpaque(p).takeRetainedValue()`). The rings never retain or
//     release; drain them before dropping the matrix or those references leak.
import Synchronization

/// One inter-CPU message: a kind the receiver dispatches on, the sender's CPU, a word of
/// data and an optional object reference whose ownership travels with the message.
public struct Message: Equatable {
    /// What the receiver should do (the scheduler defines the values).
    public var kind: UInt32
    /// The sending CPU (`MailboxMatrix.send` stamps it).
    public var source: Int
    /// A word of data (a sequence number, an address, a deadline...).
    public var payload: UInt64
    /// A retained object (`Unmanaged.passRetained(x).toOpaque()`) the receiver takes over;
    /// nil when the message carries none.
    public var object: UnsafeMutableRawPointer?

    public init(kind: UInt32 = 0, source: Int = 0, payload: UInt64 = 0, object: UnsafeMutableRawPointer? = nil) {
        self.kind = kind
        self.source = source
        self.payload = payload
        self.object = object
    }
}

/// A bounded single-producer/single-consumer ring of `Message`s (Lamport), lock-free.
public final class MailboxRing: @unchecked Sendable {
    /// Slots in the ring (a power of two).
    public let capacity: Int
    private let mask: Int
    /// The slots, allocated once; slot `i & mask` holds message number `i`.
    private let slots: UnsafeMutablePointer<Message>
    /// Two cache lines, so the producer's and the consumer's writes never share a line:
    ///   line 0 (producer writes): `tail` (atomic), the producer's copy of `head`;
    ///   line 1 (consumer writes): `head` (atomic), the consumer's copy of `tail`.
    private let lines: UnsafeMutableRawPointer
    /// Number of messages ever published; written by the producer only.
    private let tail: UnsafeMutablePointer<Atomic<Int>>
    /// Number of messages ever consumed; written by the consumer only.
    private let head: UnsafeMutablePointer<Atomic<Int>>
    /// Producer-private: `head` as last seen (never ahead of the real one).
    private let producerHead: UnsafeMutablePointer<Int>
    /// Consumer-private: `tail` as last seen (never ahead of the real one).
    private let consumerTail: UnsafeMutablePointer<Int>

    private static let lineBytes = 64

    /// An empty ring of `capacity` slots (a power of two, at least 2).
    public init(capacity: Int = 64) {
        precondition(capacity >= 2 && capacity & (capacity - 1) == 0, "MailboxRing: capacity must be a power of two")
        self.capacity = capacity
        mask = capacity - 1
        slots = UnsafeMutablePointer<Message>.allocate(capacity: capacity)
        slots.initialize(repeating: Message(), count: capacity)
        lines = UnsafeMutableRawPointer.allocate(byteCount: 2 * Self.lineBytes, alignment: Self.lineBytes)
        tail = lines.bindMemory(to: Atomic<Int>.self, capacity: 1)
        tail.initialize(to: Atomic(0))
        producerHead = (lines + 8).bindMemory(to: Int.self, capacity: 1)
        producerHead.initialize(to: 0)
        head = (lines + Self.lineBytes).bindMemory(to: Atomic<Int>.self, capacity: 1)
        head.initialize(to: Atomic(0))
        consumerTail = (lines + Self.lineBytes + 8).bindMemory(to: Int.self, capacity: 1)
        consumerTail.initialize(to: 0)
    }

    deinit {
        slots.deinitialize(count: capacity)
        slots.deallocate()
        tail.deinitialize(count: 1)
        head.deinitialize(count: 1)
        lines.deallocate()
    }

    /// Producer only: appends `message`; false (and nothing stored) when the ring is full.
    public func trySend(_ message: Message) -> Bool {
        let t = tail.pointee.load(ordering: .relaxed)  // we are its only writer
        if t &- producerHead.pointee == capacity {
            // Looks full: refresh our copy. Acquire pairs with the consumer's release of
            // `head`, so its read of the slot we are about to reuse is finished.
            producerHead.pointee = head.pointee.load(ordering: .acquiring)
            if t &- producerHead.pointee == capacity { return false }
        }
        (slots + (t & mask)).pointee = message
        // Release: the slot write above is visible to whoever acquires this `tail`.
        tail.pointee.store(t &+ 1, ordering: .releasing)
        return true
    }

    /// Consumer only: removes and returns the oldest message; nil when the ring is empty.
    public func tryReceive() -> Message? {
        let h = head.pointee.load(ordering: .relaxed)  // we are its only writer
        if h == consumerTail.pointee {
            // Looks empty: refresh our copy. Acquire pairs with the producer's release of
            // `tail`, so the slots up to it are fully written.
            consumerTail.pointee = tail.pointee.load(ordering: .acquiring)
            if h == consumerTail.pointee { return nil }
        }
        let message = (slots + (h & mask)).pointee
        // Release: our read of the slot is done before the producer may overwrite it.
        head.pointee.store(h &+ 1, ordering: .releasing)
        return message
    }

    /// Messages waiting (a snapshot when called by neither side).
    public var count: Int {
        // `head` first: `tail` only grows and never passes below `head`, so the
        // difference of these two loads is never negative.
        let h = head.pointee.load(ordering: .acquiring)
        let t = tail.pointee.load(ordering: .acquiring)
        return t &- h
    }

    /// True when no message waits (a snapshot when called by neither side).
    public var isEmpty: Bool { count == 0 }
}

/// N×N rings: ring[source][destination] for every ordered CPU pair, diagonal included (a
/// CPU may post to itself, e.g. to defer work to its scheduler loop).
public final class MailboxMatrix: @unchecked Sendable {
    /// Number of CPUs (rows and columns).
    public let cpus: Int
    /// Row-major: the ring from `s` to `d` is `rings[s * cpus + d]`. Never mutated after
    /// `init`, so every CPU may read the array concurrently.
    private let rings: [MailboxRing]
    /// Per destination, the source served by its last `receive` (one cache line each;
    /// written by the destination CPU only).
    private let cursors: UnsafeMutableRawPointer

    private static let lineBytes = 64

    /// Rings of `ringCapacity` messages (a power of two) between `cpus` CPUs.
    /// Memory: cpus² × ringCapacity × 32 bytes (4 CPUs, 64 slots: 32 KiB).
    public init(cpus: Int, ringCapacity: Int = 64) {
        precondition(cpus >= 1, "MailboxMatrix: at least one CPU")
        self.cpus = cpus
        var rings: [MailboxRing] = []
        rings.reserveCapacity(cpus * cpus)
        for _ in 0..<(cpus * cpus) { rings.append(MailboxRing(capacity: ringCapacity)) }
        self.rings = rings
        cursors = UnsafeMutableRawPointer.allocate(byteCount: cpus * Self.lineBytes, alignment: Self.lineBytes)
        for cpu in 0..<cpus {
            // The first scan starts at source 0.
            (cursors + cpu * Self.lineBytes).bindMemory(to: Int.self, capacity: 1).initialize(to: cpus - 1)
        }
    }

    deinit {
        cursors.deallocate()
    }

    /// The ring from `source` to `destination`.
    public func ring(from source: Int, to destination: Int) -> MailboxRing {
        precondition(source >= 0 && source < cpus && destination >= 0 && destination < cpus, "MailboxMatrix: no such CPU")
        return rings[source * cpus + destination]
    }

    /// On CPU `source`: posts `message` (its `source` field set to `source`) to
    /// `destination`; false when that ring is full (the caller keeps the message).
    public func send(from source: Int, to destination: Int, _ message: Message) -> Bool {
        var stamped = message
        stamped.source = source
        return ring(from: source, to: destination).trySend(stamped)
    }

    /// On CPU `cpu`: the next message from its inbound rings, nil when all are empty.
    /// Sources are served round-robin starting after the last one served, so a busy
    /// sender cannot starve the others: a waiting message is received within `cpus`
    /// calls that return one.
    public func receive(at cpu: Int) -> Message? {
        precondition(cpu >= 0 && cpu < cpus, "MailboxMatrix: no such CPU")
        let cursor = cursor(cpu)
        var source = cursor.pointee
        for _ in 0..<cpus {
            source = source + 1 == cpus ? 0 : source + 1
            if let message = rings[source * cpus + cpu].tryReceive() {
                cursor.pointee = source
                return message
            }
        }
        return nil
    }

    /// True when a message waits for `cpu` (a snapshot: safe from any CPU, e.g. to decide
    /// whether to wake `cpu` or whether it may halt).
    public func pending(at cpu: Int) -> Bool {
        precondition(cpu >= 0 && cpu < cpus, "MailboxMatrix: no such CPU")
        for source in 0..<cpus where !rings[source * cpus + cpu].isEmpty { return true }
        return false
    }

    private func cursor(_ cpu: Int) -> UnsafeMutablePointer<Int> {
        (cursors + cpu * Self.lineBytes).assumingMemoryBound(to: Int.self)
    }
}
