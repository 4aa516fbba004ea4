// The Firecracker "hybrid vsock" handshake a host client speaks on the `--uds` socket
// (Firecracker docs/vsock.md, "Host-Initiated Connections"): the client sends
// `CONNECT <port>\n`; when the guest accepts, the back-end answers `OK <local-port>\n`
// and the stream carries the connection's bytes from then on. A refused or timed-out
// connection is closed without a word.

public enum HybridHandshake {
    /// The longest line accepted before giving up on a client.
    public static let maximumLine = 64

    public enum Outcome: Equatable, Sendable {
        /// No newline yet: read more.
        case incomplete
        /// `CONNECT <port>`: the guest port, and any bytes the client sent after the line.
        case connect(port: UInt32, rest: [UInt8])
        /// Not the handshake: close the client (the reason is for the log).
        case invalid(String)
    }

    /// Parses what a client has sent so far.
    public static func parse(_ bytes: [UInt8]) -> Outcome {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else {
            return bytes.count > maximumLine ? .invalid("no CONNECT line in the first \(maximumLine) bytes") : .incomplete
        }
        guard newline <= maximumLine else { return .invalid("CONNECT line too long") }
        var line = bytes[..<newline]
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        let text = String(decoding: line, as: UTF8.self)
        let words = text.split(separator: " ", omittingEmptySubsequences: true)
        guard words.count == 2, words[0] == "CONNECT" else { return .invalid("expected 'CONNECT <port>', got '\(text)'") }
        guard let port = UInt32(words[1]), port < UInt32.max else { return .invalid("bad port '\(words[1])'") }
        return .connect(port: port, rest: Array(bytes[(newline + 1)...]))
    }

    /// The reply once the guest accepted: `OK <local-port>\n`.
    public static func okLine(localPort: UInt32) -> [UInt8] {
        Array("OK \(localPort)\n".utf8)
    }
}
