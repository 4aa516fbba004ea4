// The ARP cache (RFC 826, RFC 1122 §2.3.2): which MAC answers for each on-link IPv4
// address, the resolutions under way, and the frames waiting for them. Pure: no clock, no
// I/O; the caller passes `now` (monotonic nanoseconds) and sends what the cache asks for.
//
// Protocol walkthrough, as NetInterface drives it:
//   * Receiving an ARP packet (RFC 826 "Packet Reception"): `update(create: false)` first
//     (the merge: refresh the sender's entry if there is one), then, when the packet is for
//     this host, `update(create: true)`; either way `releaseFrames` sends what waited.
//   * Sending to a next hop: `lookup`; a hit gives the MAC (and, once in the entry's last
//     `refreshWindow`, asks for a unicast request to renew it, RFC 1122 §2.3.2.1); a miss
//     `enqueue`s the whole frame and, for a new resolution, the caller broadcasts a request.
//   * `tick`: every resolution whose retry time has come asks again (every `retryInterval`)
//     or, after `tries` requests, gives up and drops its frames; expired entries go.
//
// Bounds (a hostile LAN costs bounded memory, DESIGN.md "Robustness rules"):
//   entries       at most `limits.entries`; a new one evicts the one learned longest ago
//   resolutions   at most `limits.resolutions`; a new one evicts the oldest (its frames dropped)
//   frames        at most `limits.framesPerDestination` per address and `limits.framesTotal`
//                 in all, in slots allocated once at init; a full queue drops its oldest frame
// Every drop and eviction is counted (`counters`).
//
// Rules for callers: one thread at a time (the network thread); frames given to `enqueue`
// are copied; `releaseFrames` lends each frame's bytes for the call only.
import Wire

/// The ARP cache's sizes and times.
public struct ARPLimits: Equatable, Sendable {
    /// Cache entries at most.
    public var entries: Int
    /// How long an entry is believed after it was learned or confirmed.
    public var lifetime: UInt64
    /// Before expiry, the window in which a lookup asks for a renewing request.
    public var refreshWindow: UInt64
    /// Time between the requests of one resolution.
    public var retryInterval: UInt64
    /// Requests sent before a resolution gives up.
    public var tries: Int
    /// Resolutions under way at most.
    public var resolutions: Int
    /// Frames waiting for one address at most.
    public var framesPerDestination: Int
    /// Frames waiting in all at most.
    public var framesTotal: Int
    /// The largest frame a slot holds (an Ethernet frame without FCS).
    public var frameBytes: Int

    public init(entries: Int = 64, lifetime: UInt64 = 60_000_000_000, refreshWindow: UInt64 = 5_000_000_000,
                retryInterval: UInt64 = 1_000_000_000, tries: Int = 3, resolutions: Int = 8,
                framesPerDestination: Int = 16, framesTotal: Int = 32, frameBytes: Int = 1514) {
        self.entries = entries
        self.lifetime = lifetime
        self.refreshWindow = refreshWindow
        self.retryInterval = retryInterval
        self.tries = tries
        self.resolutions = resolutions
        self.framesPerDestination = framesPerDestination
        self.framesTotal = framesTotal
        self.frameBytes = frameBytes
    }
}

/// What the cache has done, for a log line and for tests.
public struct ARPCounters: Equatable, Sendable {
    /// Entries added.
    public var learned: UInt64 = 0
    /// Entries refreshed or changed by a packet from their owner (the merge).
    public var updated: UInt64 = 0
    /// Entries evicted for a new one (the table was full).
    public var evicted: UInt64 = 0
    /// Entries removed on expiry.
    public var expired: UInt64 = 0
    /// Resolutions started.
    public var resolutionsStarted: UInt64 = 0
    /// Resolutions that gave up after their last try.
    public var resolutionsFailed: UInt64 = 0
    /// Resolutions evicted for a new one (too many under way).
    public var resolutionsEvicted: UInt64 = 0
    /// Frames queued for a resolution.
    public var framesQueued: UInt64 = 0
    /// Frames dropped from a full queue (per address or in all) or refused for their size.
    public var framesDroppedFull: UInt64 = 0
    /// Frames dropped because their resolution failed or was evicted.
    public var framesDroppedUnresolved: UInt64 = 0

    public init() {}
}

public final class ARPCache {
    struct Entry {
        var address: IPv4Address
        var mac: MACAddress
        /// When the entry was added (eviction picks the oldest).
        var learned: UInt64
        var expires: UInt64
        /// A renewing request was asked for since the last confirmation.
        var refreshing: Bool
    }

    struct Resolution {
        var address: IPv4Address
        var started: UInt64
        /// Requests sent so far.
        var tries: Int
        /// When the next request goes (or the resolution gives up).
        var due: UInt64
    }

    /// One waiting frame: its bytes are `storage[index * frameBytes ..< + length]`.
    struct Slot {
        var address: IPv4Address
        var length: Int
        /// Arrival order (the oldest has the smallest).
        var order: UInt64
    }

    public let limits: ARPLimits
    public private(set) var counters = ARPCounters()
    var entries: [Entry] = []
    var resolutions: [Resolution] = []
    var slots: [Slot?]
    let storage: UnsafeMutableRawBufferPointer
    var nextOrder: UInt64 = 0

    public init(limits: ARPLimits = ARPLimits()) {
        self.limits = limits
        entries.reserveCapacity(limits.entries)
        resolutions.reserveCapacity(limits.resolutions)
        slots = [Slot?](repeating: nil, count: limits.framesTotal)
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, limits.framesTotal * limits.frameBytes),
                                                         alignment: 16)
    }

    deinit { storage.deallocate() }

    /// Entries now in the table.
    public var count: Int { entries.count }
    /// Frames now waiting for a resolution.
    public var waitingFrames: Int { slots.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }
    /// Addresses being resolved, oldest first.
    public var resolving: [IPv4Address] { resolutions.map { $0.address } }

    // MARK: entries

    /// The MAC for `address` while its entry is current; `refresh` is true once per
    /// confirmation when the entry has entered its last `refreshWindow` (send a unicast
    /// request to renew it).
    public func lookup(_ address: IPv4Address, now: UInt64) -> (mac: MACAddress, refresh: Bool)? {
        guard let index = entries.firstIndex(where: { $0.address == address }) else { return nil }
        guard now < entries[index].expires else { return nil }
        var refresh = false
        if !entries[index].refreshing && now >= entries[index].expires &- limits.refreshWindow {
            entries[index].refreshing = true
            refresh = true
        }
        return (entries[index].mac, refresh)
    }

    /// RFC 826's merge: when `address` has an entry, its MAC is set to `mac` and its lifetime
    /// restarts; otherwise, when `create`, an entry is added (evicting the oldest from a full
    /// table). True when the address has an entry afterwards: release its frames then.
    @discardableResult
    public func update(_ address: IPv4Address, mac: MACAddress, now: UInt64, create: Bool) -> Bool {
        if let index = entries.firstIndex(where: { $0.address == address }) {
            entries[index].mac = mac
            entries[index].expires = now &+ limits.lifetime
            entries[index].refreshing = false
            counters.updated += 1
            return true
        }
        guard create, limits.entries > 0 else { return false }
        if entries.count >= limits.entries {
            var oldest = 0
            for index in entries.indices where entries[index].learned < entries[oldest].learned { oldest = index }
            entries.remove(at: oldest)
            counters.evicted += 1
        }
        entries.append(Entry(address: address, mac: mac, learned: now, expires: now &+ limits.lifetime, refreshing: false))
        counters.learned += 1
        return true
    }

    /// Forgets `address` (its entry only; a resolution under way goes on).
    public func remove(_ address: IPv4Address) {
        entries.removeAll { $0.address == address }
    }

    // MARK: resolutions and their frames

    /// Queues a copy of `frame` until `address` resolves. True when this starts a resolution:
    /// the caller broadcasts the first request now (the cache counts it as try 1).
    public func enqueue(_ frame: UnsafeRawBufferPointer, for address: IPv4Address, now: UInt64) -> Bool {
        var started = false
        if !resolutions.contains(where: { $0.address == address }) {
            if resolutions.count >= limits.resolutions, !resolutions.isEmpty {
                let evicted = resolutions.removeFirst()
                counters.resolutionsEvicted += 1
                counters.framesDroppedUnresolved += UInt64(dropFrames(for: evicted.address))
            }
            if limits.resolutions > 0 {
                resolutions.append(Resolution(address: address, started: now, tries: 1, due: now &+ limits.retryInterval))
                counters.resolutionsStarted += 1
                started = true
            }
        }
        guard frame.count <= limits.frameBytes, started || resolutions.contains(where: { $0.address == address }) else {
            counters.framesDroppedFull += 1
            return started
        }
        let mine = slots.reduce(0) { $0 + ($1?.address == address ? 1 : 0) }
        if mine >= limits.framesPerDestination {
            dropOldestFrame { $0.address == address }
        }
        var free = slots.firstIndex { $0 == nil }
        if free == nil {
            dropOldestFrame { _ in true }
            free = slots.firstIndex { $0 == nil }
        }
        guard let index = free else {                     // framesTotal is 0
            counters.framesDroppedFull += 1
            return started
        }
        UnsafeMutableRawBufferPointer(rebasing: storage[index * limits.frameBytes ..< index * limits.frameBytes + frame.count])
            .copyMemory(from: frame)
        slots[index] = Slot(address: address, length: frame.count, order: nextOrder)
        nextOrder += 1
        counters.framesQueued += 1
        return started
    }

    /// Ends the resolution of `address` (it has an entry now) and hands each frame that
    /// waited for it to `send`, oldest first; the bytes are the caller's to patch (the
    /// destination MAC) during the call. Returns how many there were.
    @discardableResult
    public func releaseFrames(for address: IPv4Address, _ send: (UnsafeMutableRawBufferPointer) -> Void) -> Int {
        resolutions.removeAll { $0.address == address }
        var released = 0
        while true {
            var next: Int? = nil
            for index in slots.indices {
                guard let slot = slots[index], slot.address == address else { continue }
                if let current = next, let best = slots[current], best.order < slot.order { continue }
                next = index
            }
            guard let index = next, let slot = slots[index] else { return released }
            slots[index] = nil
            send(UnsafeMutableRawBufferPointer(rebasing: storage[index * limits.frameBytes ..< index * limits.frameBytes + slot.length]))
            released += 1
        }
    }

    /// Runs the timers due at `now`: each resolution due asks for another request
    /// (`request(address)`) or gives up after its last try, dropping its frames; entries past
    /// their lifetime are removed.
    public func tick(now: UInt64, request: (IPv4Address) -> Void) {
        var index = 0
        while index < resolutions.count {
            guard now >= resolutions[index].due else {
                index += 1
                continue
            }
            if resolutions[index].tries >= limits.tries {
                let failed = resolutions.remove(at: index)
                counters.resolutionsFailed += 1
                counters.framesDroppedUnresolved += UInt64(dropFrames(for: failed.address))
                continue
            }
            resolutions[index].tries += 1
            resolutions[index].due = now &+ limits.retryInterval
            request(resolutions[index].address)
            index += 1
        }
        let before = entries.count
        entries.removeAll { now >= $0.expires }
        counters.expired += UInt64(before - entries.count)
    }

    /// The earliest time a resolution wants `tick` (nil when none is under way). Entry
    /// expiry needs no wake-up: an expired entry is ignored by `lookup`.
    public var nextDeadline: UInt64? {
        var earliest: UInt64? = nil
        for resolution in resolutions where earliest.map({ resolution.due < $0 }) ?? true { earliest = resolution.due }
        return earliest
    }

    /// Frees every slot waiting for `address`; how many there were.
    func dropFrames(for address: IPv4Address) -> Int {
        var dropped = 0
        for index in slots.indices where slots[index]?.address == address {
            slots[index] = nil
            dropped += 1
        }
        return dropped
    }

    /// Frees the oldest slot `matching` accepts, counting it as dropped for a full queue.
    func dropOldestFrame(_ matching: (Slot) -> Bool) {
        var oldest: Int? = nil
        for index in slots.indices {
            guard let slot = slots[index], matching(slot) else { continue }
            if let current = oldest, let best = slots[current], best.order < slot.order { continue }
            oldest = index
        }
        if let index = oldest {
            slots[index] = nil
            counters.framesDroppedFull += 1
        }
    }
}
