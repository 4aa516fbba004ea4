// What the back-ends' command lines share: walking `--name value`, `--name=value` and flag
// arguments (OptionReader), one error type whose message is the line for stderr, and the
// executables' `--help` / exit-64 handling (CommandLineOptions.fromCommandLine).
import Glibc

/// A bad command line: `message` is the whole line for stderr; the executable exits 64.
public struct OptionError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// Walks a command line one option at a time. An option's value is the text after its
/// `=` or else the next argument; a flag given `=text` ignores the text.
public struct OptionReader {
    let arguments: [String]
    var index = -1
    /// The option being read: `--name` of `--name=value`.
    var name = ""
    var argument = ""
    var inline: String?

    public init(_ arguments: [String]) { self.arguments = arguments }

    /// Moves to the next option and returns its name, or nil after the last one.
    public mutating func next() -> String? {
        index += 1
        guard index < arguments.count else { return nil }
        argument = arguments[index]
        name = argument
        inline = nil
        if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
            name = String(argument[..<equals])
            inline = String(argument[argument.index(after: equals)...])
        }
        return name
    }

    /// The current option's value (consuming the next argument unless it had `=value`).
    public mutating func value() throws(OptionError) -> String {
        if let inline { return inline }
        index += 1
        guard index < arguments.count else { throw OptionError(message: "\(name) needs a value") }
        return arguments[index]
    }

    /// The error for an option the command does not know.
    public var unknown: OptionError { OptionError(message: "unknown option '\(argument)' (see --help)") }
}

/// A back-end's options as its executable reads them. Every back-end takes `--socket PATH`
/// (required); `parse` reads it and asks the type for the rest.
public protocol CommandLineOptions {
    /// The `--help` text.
    static var usage: String { get }
    init()
    /// The vhost-user socket QEMU connects to (`-chardev socket,path=`).
    var socketPath: String { get set }
    /// Reads the option `name` (and its value, from `reader`); false when it is not one
    /// of this command's.
    mutating func read(_ name: String, from reader: inout OptionReader) throws(OptionError) -> Bool
    /// Checks the options together once all are read and `--socket` is given.
    func validate() throws(OptionError)
}

extension CommandLineOptions {
    public typealias ParseError = OptionError

    /// Reads a command line (without the program name); the first bad option is the error.
    public static func parse(_ arguments: [String]) throws(OptionError) -> Self {
        var options = Self()
        var reader = OptionReader(arguments)
        while let name = reader.next() {
            if name == "--socket" {
                options.socketPath = try reader.value()
            } else if try !options.read(name, from: &reader) {
                throw reader.unknown
            }
        }
        guard !options.socketPath.isEmpty else { throw OptionError(message: "--socket PATH is required") }
        try options.validate()
        return options
    }

    /// The process's options: `--help` or `-h` anywhere prints `usage` and exits 0; a bad
    /// option is logged (BackendLog) and exits 64 (EX_USAGE).
    public static func fromCommandLine() -> Self {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.contains("--help") || arguments.contains("-h") {
            print(usage)
            exit(0)
        }
        do {
            return try parse(arguments)
        } catch {
            BackendLog.line("\(error)")
            exit(64)
        }
    }
}
