// Helpers the Core tests share.

/// SplitMix64 (Steele, Lea and Flood, 2014): deterministic and seeded, so a randomised test
/// replays the same sequence on every run.
struct RNG {
    var state: UInt64
    init(state: UInt64) { self.state = state }
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// Counts deinitialised `Tracked` objects: a container must release what it drops.
final class Tracker {
    var deinits = 0
}

/// A stand-in object (a thread, a sleeper) that reports its deinit to its tracker.
final class Tracked {
    let id: Int
    let tracker: Tracker?
    init(_ id: Int, tracker: Tracker? = nil) {
        self.id = id
        self.tracker = tracker
    }
    deinit { tracker?.deinits += 1 }
}
