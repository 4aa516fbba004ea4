// What toro itself prints. Progress and errors go to stderr, prefixed `toro: `, so
// stdout carries only results (the guest's console, image paths, transcripts) and can
// be redirected or piped on its own.

#if canImport(Glibc)
import Glibc
#endif

public enum Console {
    /// A progress line on stderr.
    public static func progress(_ text: String) { errorLine("toro: " + text) }

    /// A one-line error on stderr.
    public static func error(_ text: String) { errorLine("toro: " + text) }

    /// A line on stdout.
    public static func line(_ text: String) {
        writeAll(1, Array((text + "\n").utf8)[...])
    }

    static func errorLine(_ text: String) {
        writeAll(2, Array((text + "\n").utf8)[...])
    }
}
