// Legacy `-p H:G` through toro's own front (PortFront.swift): toro listens on 127.0.0.1:H
// with a full backlog and slirp's hostfwd gets an internal port instead, a free ephemeral
// port on 127.0.0.1 that toro picks, forwarded to guest port G. slirp listens with a
// backlog of 1, so the front hands it connections one at a time.
//
// `toro run`, `compare` (and `bench`, `test`, which run `toro run`) start it before QEMU
// and stop it after QEMU has exited. `--print-command` prints the hostfwd on the user's
// own port instead: a line pasted into a shell has no toro beside it, so slirp listens on
// H itself (with its backlog of 1).

#if canImport(Glibc)
import Glibc
#endif

public enum LegacyFront {
    /// For a legacy command on user networking with forwards: starts a front on each
    /// forward's host port and points slirp's hostfwd rules at internal ports. nil when
    /// the command has no forward to front. Throws when a host port is taken.
    public static func attach(to command: inout QEMUCommand) throws(ToolFailure) -> PortFront? {
        guard case .user(let forwards)? = command.network, !forwards.isEmpty else { return nil }
        var inner: [PortForward] = []
        for forward in forwards {
            var port: Int? = nil
            // freePort's port is free when it answers; skip one that is the user's or taken twice.
            for _ in 0..<8 {
                guard let candidate = KVClient.freePort() else { break }
                if !forwards.contains(where: { $0.host == candidate }) && !inner.contains(where: { $0.host == candidate }) {
                    port = candidate
                    break
                }
            }
            guard let port else { throw ToolFailure(.qemuFailed, "no free TCP port on 127.0.0.1 for slirp's forward") }
            inner.append(PortForward(host: port, guest: forward.guest))
        }
        let front: PortFront
        do throws(ToolFailure) {
            front = try PortFront(routes: zip(forwards, inner).map { (listen: $0.host, target: $1.host) })
        } catch {
            let forward = forwards.first { error.message.contains("127.0.0.1:\($0.host):") }
            throw ToolFailure(error.status, (forward.map { "-p \($0.host):\($0.guest): " } ?? "") + error.message)
        }
        command.network = .user(forwards: inner)
        front.start()
        return front
    }

    /// Stops `front` and reports, in one line, newcomers it closed because the cap was reached.
    public static func finish(_ front: PortFront?) {
        guard let front else { return }
        front.stop()
        let counts = front.counts
        if counts.refused > 0 {
            Console.progress("the -p front closed \(counts.refused) connection(s) at once: \(front.maxConnections) were already open")
        }
    }
}
