// Helpers the Core tests share.

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
