// `toro-vsock`'s command line. Parsing is pure so the tests can drive it; a bad option is
// one line for stderr and exit status 64 (EX_USAGE).
//
//   toro-vsock --socket PATH [--uds PATH] [--cid N] [--forward HOSTPORT:GUESTPORT ...] [--verbose]

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

public struct VsockOptions: Equatable, Sendable {
    /// The vhost-user socket QEMU connects to (`-chardev socket,path=`).
    public var socketPath: String = ""
    /// The Firecracker-style hybrid socket: host clients connect here and send
    /// `CONNECT <port>\n`; guest connections to host port P go to `<uds>_P`.
    public var udsPath: String?
    /// The guest's context ID (virtio 1.2 §5.10.4: guest_cid; 0-2 are reserved).
    public var guestCID: UInt64 = 3
    public var forwards: [VsockForward] = []
    public var verbose = false

    public init() {}

    public static let usage = """
        usage: toro-vsock --socket PATH [--uds PATH] [--cid N] [--forward HOSTPORT:GUESTPORT ...] [--verbose]
          --socket PATH      vhost-user socket to listen on (exists once it accepts); QEMU connects with
                             -chardev socket,id=vsock,path=PATH -device vhost-user-vsock-device,chardev=vsock
                             (no guest-cid= there: QEMU reads the CID from this back-end's config space)
          --uds PATH         hybrid Unix socket: a host client sends "CONNECT <port>\\n" and gets "OK <local-port>\\n";
                             the guest's connections to host port P go to the Unix socket PATH_P
          --cid N            the guest's context ID (default 3)
          --forward H:G      listen on 127.0.0.1:H and bridge each TCP connection to guest port G (repeatable)
          --verbose          log every connection event
        Exits 0 when QEMU disconnects, 64 on a bad option, 1 on any other failure.
        """

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    public static func parse(_ arguments: [String]) throws(ParseError) -> VsockOptions {
        var options = VsockOptions()
        var index = 0
        func value(_ name: String, _ inline: String?) throws(ParseError) -> String {
            if let inline { return inline }
            index += 1
            guard index < arguments.count else { throw ParseError(message: "\(name) needs a value") }
            return arguments[index]
        }
        while index < arguments.count {
            let argument = arguments[index]
            var name = argument
            var inline: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inline = String(argument[argument.index(after: equals)...])
            }
            switch name {
            case "--socket": options.socketPath = try value(name, inline)
            case "--uds": options.udsPath = try value(name, inline)
            case "--cid":
                let text = try value(name, inline)
                guard let cid = UInt64(text), cid >= 3, cid < 0xFFFF_FFFF else {
                    throw ParseError(message: "--cid: '\(text)' is not a guest CID (3...4294967294)")
                }
                options.guestCID = cid
            case "--forward", "-p": options.forwards.append(try parseForward(try value(name, inline)))
            case "--verbose": options.verbose = true
            default: throw ParseError(message: "unknown option '\(argument)' (see --help)")
            }
            index += 1
        }
        guard !options.socketPath.isEmpty else { throw ParseError(message: "--socket PATH is required") }
        if options.udsPath == "" { throw ParseError(message: "--uds needs a path") }
        var seen = Set<UInt16>()
        for forward in options.forwards where !seen.insert(forward.hostPort).inserted {
            throw ParseError(message: "--forward: host port \(forward.hostPort) given twice")
        }
        return options
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
