// `toro-fs`'s command line. Parsing is pure so the tests can drive it; a bad option is one
// line for stderr and exit status 64 (EX_USAGE), a share that is missing or not a
// directory exit status 66 (EX_NOINPUT). CommandLineOptions.parse walks the arguments and
// reads `--socket`; this file the rest.
//
//   toro-fs --socket PATH --share DIR[:ro] [--read-only] [--max-nodes N] [--max-handles N] [--debug]
import Glibc

public struct FSOptions: CommandLineOptions, Equatable, Sendable {
    /// The vhost-user socket QEMU connects to (`-chardev socket,path=`).
    public var socketPath = ""
    /// The host folder the guest sees; nothing outside it is reachable.
    public var sharePath = ""
    public var readOnly = false
    /// What one guest may hold (FUSEServerLimits): `--max-nodes`, `--max-handles`.
    public var limits = FUSEServerLimits()
    public var debug = false

    public init() {}

    public static let usage = """
        usage: toro-fs --socket PATH --share DIR[:ro] [--read-only] [--max-nodes N] [--max-handles N] [--debug]
          --socket PATH    vhost-user socket to listen on (exists once it accepts); QEMU connects with
                           -chardev socket,id=fs0,path=PATH -device vhost-user-fs-device,chardev=fs0,tag=toro
                           (guest memory must be shared: -object memory-backend-memfd,share=on)
          --share DIR      the host folder served to the guest; DIR:ro or --read-only refuses every change (EROFS)
          --max-nodes N    files and folders the guest may know at once (default 16384); past it a
                           lookup is answered ENFILE until the guest forgets some
          --max-handles N  files and folders the guest may have open at once (default 4096); past it
                           an open is answered EMFILE until the guest closes some
          --debug          log every vhost-user message and refused FUSE request
        Each node and each handle holds a host descriptor. toro-fs raises its soft `ulimit -n` to
        what the caps need and, if the hard limit is lower, lowers the caps to fit (with a line
        when they were given).
        The guest never reaches outside DIR: no '..', no absolute or escaping symlinks; devices,
        FIFOs and sockets in DIR are neither listed nor opened. Even as root, no guest request
        sets a set-user-ID, set-group-ID or sticky bit (create and mkdir drop them, chmod asking
        for one is EPERM; writing a set-ID file clears its set-ID bits) or changes a file's owner
        (EPERM). Repeated refusals are logged at most once a second per kind.
        Exits 0 when QEMU disconnects or on SIGTERM/SIGINT, 1 on a protocol violation or
        failure, 64 on a bad option, 66 when DIR is missing or not a directory.
        """

    public mutating func read(_ name: String, from reader: inout OptionReader) throws(OptionError) -> Bool {
        switch name {
        case "--share":
            var share = try reader.value()
            if share.hasSuffix(":ro") {
                share.removeLast(3)
                readOnly = true
            }
            sharePath = share
        case "--read-only": readOnly = true
        case "--max-nodes": limits.maxNodes = try Self.count(name, try reader.value(), minimum: 2)
        case "--max-handles": limits.maxHandles = try Self.count(name, try reader.value(), minimum: 1)
        case "--debug", "--verbose": debug = true
        default: return false
        }
        return true
    }

    /// A cap's value: a whole number from `minimum` to 2^20.
    static func count(_ name: String, _ text: String, minimum: Int) throws(OptionError) -> Int {
        guard let value = Int(text), value >= minimum, value <= 1 << 20 else {
            throw ParseError(message: "\(name): '\(text)' is not a count (\(minimum)...1048576)")
        }
        return value
    }

    public func validate() throws(OptionError) {
        guard !sharePath.isEmpty else { throw ParseError(message: "--share DIR is required") }
    }

    /// Why the share cannot be served (missing, not a directory), or nil when it can.
    public func shareProblem() -> String? {
        var status = stat()
        guard stat(sharePath, &status) == 0 else {
            return "--share \(sharePath): \(String(cString: strerror(errno))); create the folder or fix the path"
        }
        guard status.st_mode & S_IFMT == S_IFDIR else { return "--share \(sharePath): not a directory" }
        return nil
    }
}
