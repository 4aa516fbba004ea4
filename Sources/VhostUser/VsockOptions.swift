// `toro-vsock`'s command line. Parsing is pure so the tests can drive it; a bad option is
// one line for stderr and exit status 64 (EX_USAGE). CommandLineOptions.parse walks the
// arguments and reads `--socket`; this file the rest.
//
//   toro-vsock --socket PATH [--uds PATH] [--cid N] [--forward HOSTPORT:GUESTPORT ...]
//              [--max-connections N] [--verbose]

public struct VsockForward: Equatable, Sendable {
    /// TCP port on 127.0.0.1.
    public var hostPort: UInt16
    /// vsock port in the guest.
    public var guestPort: UInt32

    public init(hostPort: UInt16, guestPort: UInt32) {
        self.hostPort = hostPort
        self.guestPort = guestPort
    }
}

public struct VsockOptions: CommandLineOptions, Equatable, Sendable {
    /// The vhost-user socket QEMU connects to (`-chardev socket,path=`).
    public var socketPath: String = ""
    /// The Firecracker-style hybrid socket: host clients connect here and send
    /// `CONNECT <port>\n`; guest connections to host port P go to `<uds>_P`.
    public var udsPath: String?
    /// The guest's context ID (virtio 1.2 §5.10.4: guest_cid; 0-2 are reserved).
    public var guestCID: UInt64 = 3
    public var forwards: [VsockForward] = []
    /// Bridged connections (and hybrid clients handshaking) at once; beyond it a host
    /// client is closed at once and a guest REQUEST is reset.
    public var maxConnections = VsockDevice.defaultMaxConnections
    public var verbose = false

    public init() {}

    public static let usage = """
        usage: toro-vsock --socket PATH [--uds PATH] [--cid N] [--forward HOSTPORT:GUESTPORT ...]
                          [--max-connections N] [--verbose]
          --socket PATH      vhost-user socket to listen on (exists once it accepts); QEMU connects with
                             -chardev socket,id=vsock,path=PATH -device vhost-user-vsock-device,chardev=vsock
                             (no guest-cid= there: QEMU reads the CID from this back-end's config space)
          --uds PATH         hybrid Unix socket: a host client sends "CONNECT <port>\\n" and gets "OK <local-port>\\n";
                             the guest's connections to host port P go to the Unix socket PATH_P
          --cid N            the guest's context ID (default 3)
          --forward H:G      listen on 127.0.0.1:H and bridge each TCP connection to guest port G (repeatable)
          --max-connections N  connections bridged at once, both directions, hybrid clients still sending
                             their CONNECT line included (default 1024); beyond it a host client is closed
                             as soon as it is accepted and a guest's connect is answered by a reset
          --verbose          log every connection event
        Each connection holds one host descriptor: toro-vsock raises its soft `ulimit -n` to N + 64
        and, if the hard limit is lower, lowers N to fit (with a line when N was given). When descriptors run out
        anyway, accepting pauses (50 ms, doubling to 1 s) instead of spinning. Lines about bad
        guest packets are logged at most once a second per kind, with a count of those suppressed.
        Exits 0 when QEMU disconnects, 64 on a bad option, 1 on any other failure.
        """

    public mutating func read(_ name: String, from reader: inout OptionReader) throws(OptionError) -> Bool {
        switch name {
        case "--uds": udsPath = try reader.value()
        case "--cid":
            let text = try reader.value()
            guard let cid = UInt64(text), cid >= 3, cid < 0xFFFF_FFFF else {
                throw ParseError(message: "--cid: '\(text)' is not a guest CID (3...4294967294)")
            }
            guestCID = cid
        case "--forward", "-p": forwards.append(try Self.parseForward(try reader.value()))
        case "--max-connections":
            let text = try reader.value()
            guard let count = Int(text), count >= 1, count <= 1 << 20 else {
                throw ParseError(message: "--max-connections: '\(text)' is not a count (1...1048576)")
            }
            maxConnections = count
        case "--verbose": verbose = true
        default: return false
        }
        return true
    }

    public func validate() throws(OptionError) {
        if udsPath == "" { throw ParseError(message: "--uds needs a path") }
        var seen = Set<UInt16>()
        for forward in forwards where !seen.insert(forward.hostPort).inserted {
            throw ParseError(message: "--forward: host port \(forward.hostPort) given twice")
        }
    }

    /// `HOSTPORT:GUESTPORT`: a TCP port 1-65535 and a vsock port 1-4294967294.
    public static func parseForward(_ text: String) throws(ParseError) -> VsockForward {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let host = UInt16(parts[0]), host > 0,
              let guest = UInt32(parts[1]), guest > 0, guest < UInt32.max else {
            throw ParseError(message: "--forward: '\(text)' is not HOSTPORT:GUESTPORT (1-65535:1-4294967294)")
        }
        return VsockForward(hostPort: host, guestPort: guest)
    }
}
