// A Compat client script: the requests `toro compare` sends to a socket service and the
// replies it must get back, run once per platform against the forwarded port after the
// service printed `ready:` (ClientRunner.swift runs it; CompareNetwork.swift boots around it).
//
// File format (Compat/<scenario>/<file>, named by the scenario's `client:` key): one step
// per line, a verb and, for most, one space and an argument that runs verbatim to the end
// of the line. Blank lines and lines starting with `#` are ignored.
//
//   connect            open a new connection to the service's port (closing the open one);
//                      a step that needs a connection when none is open opens one first
//   send TEXT          send TEXT's bytes (nothing is added: end a line with \n yourself)
//   expect TEXT        the next bytes the service sends are exactly TEXT
//   closed             the service closes the connection, and sends nothing more first
//   close              close our connection
//   response CODE      HTTP/1.1: read one response, its head to the blank line and then
//                      Content-Length bytes of body (to the end of the stream without
//                      one); its status code is CODE (100-599)
//   head-response CODE the same for the answer to a HEAD request: a head and no body
//   header NAME: VALUE the last response has a field NAME (any case) whose value is VALUE
//   body TEXT          the last response's body is exactly TEXT
//   body-size N        the last response's body is N bytes long
//   body-crc32 HEX     the CRC-32 (IEEE, as zlib and `fs-manifest`) of the last body, 8 hex digits
//   timeout SECONDS    how long each later step may wait for the service (1-600; default 20)
//
// TEXT escapes: \n \r \t, \\ for a backslash, \s for a space (a space at the end of a line
// is easy to lose), \xHH for any byte. Any other backslash is an error, as is a step that
// checks a response before one was read, an unknown verb or a missing argument; each error
// names the file and line.

import Wire

public struct ClientScript: Equatable, Sendable {
    public enum Step: Equatable, Sendable {
        case connect
        case send([UInt8])
        case expect([UInt8])
        case closed
        case close
        /// `response CODE` (hasBody) or `head-response CODE`.
        case response(status: Int, hasBody: Bool)
        case header(name: String, value: String)
        case body([UInt8])
        case bodySize(Int)
        case bodyCRC32(UInt32)
        case timeout(Int)
    }

    /// One step and the line of the file it came from (1-based).
    public struct Line: Equatable, Sendable {
        public var number: Int
        public var step: Step
    }

    /// How the file is named in reports ("Compat/kv/client").
    public var file: String
    public var lines: [Line]

    public static let verbs = ["connect", "send", "expect", "closed", "close", "response", "head-response",
                               "header", "body", "body-size", "body-crc32", "timeout"]
    /// The wait for each step unless a `timeout` line says otherwise.
    public static let defaultTimeout = 20
    /// The most steps a script may hold (a script is read whole and run step by step).
    public static let maximumSteps = 10_000

    /// Parses a script's text; `file` names it in error messages.
    public static func parse(_ text: String, file: String) throws(ToolFailure) -> ClientScript {
        var script = ClientScript(file: file, lines: [])
        var responseRead = false
        for (index, raw) in text.consoleLines().enumerated() {
            if raw.trimmingSpaces().isEmpty || raw.trimmingSpaces().hasPrefix("#") { continue }
            let place = "\(file):\(index + 1)"
            let verb: String, argument: Substring?
            if let space = raw.firstIndex(of: " ") {
                verb = String(raw[..<space])
                argument = raw[raw.index(after: space)...]
            } else {
                verb = raw
                argument = nil
            }
            func needed() throws(ToolFailure) -> Substring {
                guard let argument, !argument.isEmpty else {
                    throw ToolFailure(.badArgument, "\(place): '\(verb)' needs an argument")
                }
                return argument
            }
            func none() throws(ToolFailure) {
                if let argument, !argument.trimmingSpaces().isEmpty {
                    throw ToolFailure(.badArgument, "\(place): '\(verb)' takes no argument, got '\(argument)'")
                }
            }
            func afterResponse() throws(ToolFailure) {
                guard responseRead else {
                    throw ToolFailure(.badArgument, "\(place): '\(verb)' checks the last response, and no response or head-response comes before it")
                }
            }
            let step: Step
            switch verb {
            case "connect":
                try none()
                step = .connect
                responseRead = false
            case "send":
                step = .send(try unescape(try needed(), place: place))
            case "expect":
                step = .expect(try unescape(try needed(), place: place))
            case "closed":
                try none()
                step = .closed
            case "close":
                try none()
                step = .close
                responseRead = false
            case "response", "head-response":
                let code = try ArgumentReader.number(String(try needed()).trimmingSpaces(), flag: "\(place): \(verb)",
                                                     range: 100...599, what: "an HTTP status code")
                step = .response(status: code, hasBody: verb == "response")
                responseRead = true
            case "header":
                try afterResponse()
                let text = try needed()
                guard let colon = text.firstIndex(of: ":"), !text[..<colon].trimmingSpaces().isEmpty else {
                    throw ToolFailure(.badArgument, "\(place): header needs 'NAME: VALUE', got '\(text)'")
                }
                step = .header(name: text[..<colon].trimmingSpaces(), value: text[text.index(after: colon)...].trimmingSpaces())
            case "body":
                try afterResponse()
                step = .body(try unescape(try needed(), place: place))
            case "body-size":
                try afterResponse()
                step = .bodySize(try ArgumentReader.number(String(try needed()).trimmingSpaces(), flag: "\(place): body-size",
                                                           range: 0...Int(Int32.max), what: "a number of bytes"))
            case "body-crc32":
                try afterResponse()
                let hex = String(try needed()).trimmingSpaces()
                guard hex.utf8.count == 8, let value = UInt32(hex, radix: 16) else {
                    throw ToolFailure(.badArgument, "\(place): body-crc32 needs 8 hex digits, got '\(hex)'")
                }
                step = .bodyCRC32(value)
            case "timeout":
                step = .timeout(try ArgumentReader.number(String(try needed()).trimmingSpaces(), flag: "\(place): timeout",
                                                          range: 1...600, what: "a number of seconds"))
            default:
                throw ToolFailure(.badArgument, "\(place): unknown step '\(verb)' (known: \(verbs.joined(separator: ", ")))")
            }
            script.lines.append(Line(number: index + 1, step: step))
            if script.lines.count > maximumSteps {
                throw ToolFailure(.badArgument, "\(place): more than \(maximumSteps) steps")
            }
        }
        guard script.lines.contains(where: { if case .send = $0.step { return true }; return false }) else {
            throw ToolFailure(.badArgument, "\(file): the script sends nothing (see Compat/README.md for the format)")
        }
        return script
    }

    /// The bytes of `text` with its escapes resolved (\n \r \t \\ \s \xHH).
    public static func unescape(_ text: Substring, place: String) throws(ToolFailure) -> [UInt8] {
        var bytes: [UInt8] = []
        var rest = Array(text.utf8)[...]
        while let byte = rest.popFirst() {
            guard byte == UInt8(ascii: "\\") else { bytes.append(byte); continue }
            guard let code = rest.popFirst() else {
                throw ToolFailure(.badArgument, "\(place): a backslash ends the line (write \\\\ for one)")
            }
            switch code {
            case UInt8(ascii: "n"): bytes.append(10)
            case UInt8(ascii: "r"): bytes.append(13)
            case UInt8(ascii: "t"): bytes.append(9)
            case UInt8(ascii: "s"): bytes.append(32)
            case UInt8(ascii: "\\"): bytes.append(92)
            case UInt8(ascii: "x"):
                let digits = rest.prefix(2)
                guard digits.count == 2, let value = UInt8(String(decoding: digits, as: UTF8.self), radix: 16) else {
                    throw ToolFailure(.badArgument, "\(place): \\x needs two hex digits")
                }
                bytes.append(value)
                rest = rest.dropFirst(2)
            default:
                throw ToolFailure(.badArgument, "\(place): unknown escape '\\\(Character(Unicode.Scalar(code)))' (known: \\n \\r \\t \\s \\\\ \\xHH)")
            }
        }
        return bytes
    }

    /// `bytes` written with the script's escapes, so a reply reads like the step that
    /// expects it; a space stays a space, except a last one (\s).
    public static func escape<C: Collection<UInt8>>(_ bytes: C) -> String {
        var text = ""
        for (offset, byte) in bytes.enumerated() {
            switch byte {
            case 10: text += "\\n"
            case 13: text += "\\r"
            case 9: text += "\\t"
            case 92: text += "\\\\"
            case 32 where offset == bytes.count - 1: text += "\\s"
            case 32...126: text.append(Character(Unicode.Scalar(byte)))
            default: text += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
            }
        }
        return text
    }

    /// `escape`, cut to `limit` characters with how many bytes there were, for reports.
    static func quote<C: Collection<UInt8>>(_ bytes: C, limit: Int = 200) -> String {
        let text = escape(bytes)
        if text.count <= limit { return "'\(text)'" }
        return "'\(text.prefix(limit))…' (\(bytes.count) bytes)"
    }
}
