// libFuzzer target: the static-web request side fed by a hostile client (RFC 9112, RFC 3986).
//
// Byte 0 picks small or default limits; the rest is the byte stream, cut into reads whose
// sizes come from the stream itself (each read's first byte, 1...64 bytes), so requests span
// reads and share them. Every delivered request's target goes through `HTTPTarget.parse`,
// and every answer is built with `HTTPResponse`. Checked after each step:
//   * the parser never holds more than one read beyond what it has consumed plus its limits;
//   * after `.failure` it keeps answering the same failure;
//   * a parsed target has no empty, ".", ".." component, and none holds "/" or a byte < 0x20;
//   * feeding the same stream in one read gives the same requests and outcome.
// Imports the real module: Wire (the HTTP request parser).
import FuzzSupport
@testable import Wire

private func checkTarget(_ target: [UInt8]) -> HTTPStatus {
    let parsed: HTTPTarget
    do throws(HTTPTargetError) { parsed = try HTTPTarget.parse(target) } catch { return error.status }
    for name in parsed.components {
        precondition(!name.isEmpty, "empty component")
        precondition(name != [0x2E] && name != [0x2E, 0x2E], "dot segment left in the path")
        precondition(!name.contains(0x2F), "separator inside a component")
        precondition(name.allSatisfy { $0 >= 0x20 && $0 != 0x7F }, "control byte in a component")
        precondition(name.count <= HTTPTarget.maximumComponent, "component over the limit")
    }
    if let name = parsed.fileName { _ = ContentType.forName(name) }
    return .ok
}

private func answer(_ event: HTTPParseEvent) -> [UInt8] {
    switch event {
    case .request(let request):
        guard request.method != .other else { return HTTPResponse.error(.methodNotAllowed, keepAlive: request.keepAlive) }
        let status = checkTarget(request.target)
        if status == .ok {
            return HTTPResponse.head(.ok, contentLength: request.target.count, contentType: ContentType.fallback,
                                     keepAlive: request.keepAlive)
        }
        return HTTPResponse.error(status, isHead: request.method == .head, keepAlive: request.keepAlive)
    case .failure(let error):
        return HTTPResponse.error(error.status, keepAlive: false)
    case .needMore:
        return []
    }
}

/// Runs the parser over `stream` in reads of the given sizes; returns every event.
private func run(_ stream: UnsafeRawBufferPointer, limits: HTTPLimits, chunked: Bool) -> [HTTPParseEvent] {
    var parser = HTTPRequestParser(limits: limits)
    var events: [HTTPParseEvent] = []
    var offset = 0
    var failed: HTTPRequestError?
    while offset < stream.count {
        var size = stream.count - offset
        if chunked { size = min(size, Int(stream[offset] & 63) + 1) }
        parser.feed(stream[offset ..< offset + size])
        offset += size
        while true {
            let event = parser.next()
            if let failed { precondition(event == .failure(failed), "parser recovered from a failure") }
            let response = answer(event)
            precondition(event == .needMore || response.count > 0, "empty response")
            if case .failure(let error) = event { failed = error }
            if event == .needMore || failed != nil { break }
            events.append(event)
        }
        if let failed { events.append(.failure(failed)); break }
        let bound = limits.maximumRequestLine + limits.maximumHeaderLine + limits.maximumHeaderSection + 64 + size
        precondition(parser.buffered <= bound, "parser buffered too much")
    }
    return events
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    var limits = HTTPLimits()
    if data[0] & 1 != 0 {
        limits.maximumRequestLine = 64
        limits.maximumHeaderLine = 48
        limits.maximumHeaderSection = 128
        limits.maximumBody = 32
    }
    let stream = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    let pieces = run(stream, limits: limits, chunked: true)
    let whole = run(stream, limits: limits, chunked: false)
    precondition(pieces == whole, "the outcome depends on how the stream was split")
    // The whole input as a target on its own must never trap.
    _ = checkTarget(Array(stream))
    return 0
}

fuzzMain(fuzz)
