// A small reader over a command's arguments: flags with values (`--cpus 2` or
// `--cpus=2`), switches, and everything after `--` kept verbatim.
//
// Every error is a ToolFailure with status 64 (bad argument) and one line that names
// the flag and says what was expected.

struct ArgumentReader {
    private var rest: ArraySlice<String>
    /// The arguments after `--`, once it has been read.
    private(set) var passthrough: [String] = []
    private var pendingValue: String? = nil

    init(_ arguments: [String]) { rest = arguments[...] }

    /// The next flag, or nil at the end (or at `--`, after which `passthrough` is set).
    mutating func nextFlag() throws(ToolFailure) -> String? {
        if let pending = pendingValue {
            throw ToolFailure(.badArgument, "unexpected value '\(pending)'")
        }
        guard let argument = rest.popFirst() else { return nil }
        if argument == "--" {
            passthrough = Array(rest)
            rest = []
            return nil
        }
        guard argument.hasPrefix("-"), argument.count > 1 else {
            throw ToolFailure(.badArgument, "unexpected argument '\(argument)' (kernel arguments go after --)")
        }
        if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
            pendingValue = String(argument[argument.index(after: equals)...])
            return String(argument[..<equals])
        }
        return argument
    }

    /// The value of `flag`, which must follow it.
    mutating func value(for flag: String) throws(ToolFailure) -> String {
        if let pending = pendingValue {
            pendingValue = nil
            guard !pending.isEmpty else { throw ToolFailure(.badArgument, "\(flag) needs a value") }
            return pending
        }
        guard let value = rest.popFirst(), value != "--" else {
            throw ToolFailure(.badArgument, "\(flag) needs a value")
        }
        return value
    }

    /// Rejects `--switch=value` for a flag that takes no value.
    mutating func noValue(for flag: String) throws(ToolFailure) {
        if pendingValue != nil {
            pendingValue = nil
            throw ToolFailure(.badArgument, "\(flag) takes no value")
        }
    }

    /// A whole number in `range` (decimal digits only).
    static func number(_ text: String, flag: String, range: ClosedRange<Int>,
                       what: String) throws(ToolFailure) -> Int {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let value = Int(text) else {
            throw ToolFailure(.badArgument, "\(flag) needs \(what), got '\(text)'")
        }
        guard range.contains(value) else {
            throw ToolFailure(.badArgument,
                              "\(flag) must be between \(range.lowerBound) and \(range.upperBound), got \(text)")
        }
        return value
    }

    static func unknown(_ flag: String, command: String) -> ToolFailure {
        ToolFailure(.badArgument, "unknown option '\(flag)' for '\(command)' (see ./toro --help)")
    }
}
