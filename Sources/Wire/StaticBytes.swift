// The bytes of a static string as an array, for replies, file names and protocol words.
//
// `Array("…".utf8)` makes a `String` first, and copying a String's UTF-8 out pulls the
// standard library's string machinery (UTF-16 views, breadcrumbs, foreign-string paths:
// several KiB) into every kernel image that does it once. A `StaticString` is already
// bytes in the image.
extension Array where Element == UInt8 {
    /// The UTF-8 bytes of `text`.
    public init(_ text: StaticString) {
        self = text.withUTF8Buffer { Array($0) }
    }
}
