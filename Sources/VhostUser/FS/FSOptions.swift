// `toro-fs`'s command line. Parsing is pure so the tests can drive it; a bad option is one
// line for stderr and exit status 64 (EX_USAGE), a share that is missing or not a
// directory exit status 66 (EX_NOINPUT). CommandLineOptions.parse walks the arguments and
// reads `--socket`; this file the rest.
//
//   toro-fs --socket PATH --share DIR[:ro] [--read-only] [--debug]
import Glibc

public struct FSOptions: CommandLineOptions, Equatable, Sendable {
    /// The vhost-user socket QEMU connects to (`-chardev socket,path=`).
    public var socketPath = ""
    /// The host folder the guest sees; nothing outside it is reachable.
    public var sharePath = ""
    public var readOnly = false
    public var debug = false

    public init() {}

    public static let usage = """
        usage: toro-fs --socket PATH --share DIR[:ro] [--read-only] [--debug]
          --socket PATH    vhost-user socket to listen on (exists once it accepts); QEMU connects with
                           -chardev socket,id=fs0,path=PATH -device vhost-user-fs-device,chardev=fs0,tag=toro
                           (guest memory must be shared: -object memory-backend-memfd,share=on)
          --share DIR      the host folder served to the guest; DIR:ro or --read-only refuses every change (EROFS)
          --debug          log every vhost-user message and refused FUSE request
        The guest never reaches outside DIR: no '..', no absolute or escaping symlinks; devices,
        FIFOs and sockets in DIR are neither listed nor opened.
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
        case "--debug", "--verbose": debug = true
        default: return false
        }
        return true
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
