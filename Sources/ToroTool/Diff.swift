// A line diff in unified style, for showing how two transcripts differ.
//
// The edit script comes from a longest-common-subsequence table (transcripts are tens of
// lines, so O(n·m) is fine); hunks carry up to `context` unchanged lines on each side and
// a `@@ -a,b +c,d @@` header, as `diff -u` prints them.

public enum Diff {
    enum Edit: Equatable {
        case same(String), removed(String), added(String)
    }

    /// The edit script turning `old` into `new`.
    static func edits(_ old: [String], _ new: [String]) -> [Edit] {
        let n = old.count, m = new.count
        var table = [[Int]](repeating: [Int](repeating: 0, count: m + 1), count: n + 1)
        for i in stride(from: n - 1, through: 0, by: -1) {
            for j in stride(from: m - 1, through: 0, by: -1) {
                table[i][j] = old[i] == new[j] ? table[i + 1][j + 1] + 1 : max(table[i + 1][j], table[i][j + 1])
            }
        }
        var result: [Edit] = []
        var i = 0, j = 0
        while i < n || j < m {
            if i < n, j < m, old[i] == new[j] {
                result.append(.same(old[i])); i += 1; j += 1
            } else if i < n, j == m || table[i + 1][j] >= table[i][j + 1] {
                result.append(.removed(old[i])); i += 1
            } else {
                result.append(.added(new[j])); j += 1
            }
        }
        return result
    }

    /// The unified diff of `old` (labelled `oldName`) against `new`, or "" when equal.
    public static func unified(_ old: [String], _ new: [String], oldName: String, newName: String,
                               context: Int = 3) -> String {
        let script = edits(old, new)
        let changed = script.indices.filter { if case .same = script[$0] { false } else { true } }
        guard !changed.isEmpty else { return "" }
        // Group changes whose context windows touch into hunks.
        var hunks: [ClosedRange<Int>] = []
        for index in changed {
            let window = max(0, index - context)...min(script.count - 1, index + context)
            if let last = hunks.last, window.lowerBound <= last.upperBound + 1 {
                hunks[hunks.count - 1] = last.lowerBound...window.upperBound
            } else {
                hunks.append(window)
            }
        }
        var lines = ["--- \(oldName)", "+++ \(newName)"]
        for hunk in hunks {
            // Line numbers (1-based) where the hunk starts in each file.
            var oldLine = 1, newLine = 1
            for edit in script[..<hunk.lowerBound] {
                switch edit {
                case .same: oldLine += 1; newLine += 1
                case .removed: oldLine += 1
                case .added: newLine += 1
                }
            }
            var oldCount = 0, newCount = 0
            var body: [String] = []
            for edit in script[hunk] {
                switch edit {
                case .same(let s): body.append(" " + s); oldCount += 1; newCount += 1
                case .removed(let s): body.append("-" + s); oldCount += 1
                case .added(let s): body.append("+" + s); newCount += 1
                }
            }
            let oldStart = oldCount == 0 ? oldLine - 1 : oldLine
            let newStart = newCount == 0 ? newLine - 1 : newLine
            lines.append("@@ -\(oldStart),\(oldCount) +\(newStart),\(newCount) @@")
            lines += body
        }
        return lines.joined(separator: "\n")
    }
}
