// The entry point every fuzz target's main.swift ends with: `fuzzMain(fuzz)`, where `fuzz`
// is the target's `@_cdecl("LLVMFuzzerTestOneInput")` function.
//
//   * Built for fuzzing (Fuzz/build.sh: `-sanitize=fuzzer,address -D FUZZING`), it hands
//     the command line to libFuzzer's driver (`LLVMFuzzerRunDriver`), so the binary takes
//     libFuzzer's flags and inputs (`-max_total_time=30`, a crash file to replay).
//   * Built plainly (`swift build`, `swift test`), it runs the target once on each file
//     named on the command line (a folder: each file in it), e.g. to reproduce a crash
//     under the debugger without the sanitizers.

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ test: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32
#else
import Foundation
#endif
import Glibc

public typealias FuzzTestOneInput = @convention(c) (UnsafePointer<UInt8>, Int) -> Int32

public func fuzzMain(_ test: FuzzTestOneInput) -> Never {
    #if FUZZING
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, test))
    #else
    var inputs: [String] = []
    for argument in CommandLine.arguments.dropFirst() {
        if argument.hasPrefix("-") {
            // libFuzzer's flags (-max_total_time=...) mean nothing to a replay.
            print("\(CommandLine.arguments[0]): ignoring \(argument) (not built for fuzzing; see Fuzz/build.sh)")
            continue
        }
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: argument, isDirectory: &isFolder), isFolder.boolValue {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: argument)) ?? []
            inputs += names.sorted().map { argument + "/" + $0 }
        } else {
            inputs.append(argument)
        }
    }
    guard !inputs.isEmpty else {
        print("usage: \(CommandLine.arguments[0]) FILE|FOLDER...   (runs the fuzz target once on each input)")
        exit(2)
    }
    for path in inputs {
        guard let data = FileManager.default.contents(atPath: path) else {
            print("\(CommandLine.arguments[0]): cannot read \(path)")
            exit(1)
        }
        print("Running: \(path) (\(data.count) bytes)")
        replay([UInt8](data), test)
    }
    print("Executed \(inputs.count) input(s)")
    exit(0)
    #endif
}

#if !FUZZING
private func replay(_ bytes: [UInt8], _ test: FuzzTestOneInput) {
    // A copy of exactly the input's size, as libFuzzer passes it (a read past the end is a
    // bug in the target even where ASan is not watching).
    let copy = UnsafeMutablePointer<UInt8>.allocate(capacity: max(bytes.count, 1))
    defer { copy.deallocate() }
    copy.initialize(from: bytes, count: bytes.count)
    _ = test(copy, bytes.count)
}
#endif
