// The children toro has running, so that SIGINT/SIGTERM/SIGHUP of toro itself leaves no
// process behind: the handler stops each child (its whole group when it has one) and
// exits with 128 + the signal, as a shell would. A run that must finish something after
// its guest (`finishBeforeExit`) exits with that status once it has.
//
// The table is a fixed array of plain integers because a signal handler may only touch
// async-signal-safe state: no allocation, no locks.

#if canImport(Glibc)
import Glibc
#endif

enum ChildRegistry {
    private static let capacity = 16
    /// Slot i holds a pid (> 0), a negated pid for a process-group leader, or 0 (free).
    nonisolated(unsafe) private static var slots = UnsafeMutablePointer<pid_t>.allocate(capacity: 16)
    nonisolated(unsafe) private static var lock = pthread_mutex_t()
    nonisolated(unsafe) private static var ready = false

    /// Installs the handlers; call once at start-up.
    static func installSignalHandlers() {
        slots.initialize(repeating: 0, count: capacity)
        pthread_mutex_init(&lock, nil)
        ready = true
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signal in
                if ChildRegistry.finishBeforeExit && ChildRegistry.pendingSignal == 0 {
                    // Stop the guest, and let toro finish what must follow it.
                    ChildRegistry.pendingSignal = signal
                    ChildRegistry.killAll()
                    return
                }
                ChildRegistry.killAll()
                _exit(128 + signal)
            }
            sigemptyset(&action.sa_mask)
            sigaction(signal, &action, nil)
        }
    }

    /// Set while a run has work to do after its guest stops (a legacy shared folder's
    /// write-back): the first SIGINT/SIGTERM/SIGHUP then stops the children and returns,
    /// recording itself in `pendingSignal`; toro finishes and exits with 128 + it. A second
    /// signal exits at once, as before.
    nonisolated(unsafe) static var finishBeforeExit = false
    nonisolated(unsafe) static var pendingSignal: Int32 = 0

    static func add(pid: pid_t, group: Bool) {
        guard ready else { return }
        pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }
        for i in 0..<capacity where slots[i] == 0 {
            slots[i] = group ? -pid : pid
            return
        }
    }

    static func remove(pid: pid_t) {
        guard ready else { return }
        pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }
        for i in 0..<capacity where slots[i] == pid || slots[i] == -pid { slots[i] = 0 }
    }

    /// Asks every registered child to stop (SIGTERM, so a child toro-cli can in turn stop
    /// its QEMU), waits a moment, then kills what is left of each process group.
    /// Async-signal-safe: reads integers, calls kill(2) and nanosleep(2).
    static func killAll() {
        guard ready else { return }
        for i in 0..<capacity where slots[i] != 0 { kill(slots[i], SIGTERM) }
        var pause = timespec(tv_sec: 0, tv_nsec: 300_000_000)
        nanosleep(&pause, nil)
        for i in 0..<capacity where slots[i] < 0 { kill(slots[i], SIGKILL) }
    }
}
