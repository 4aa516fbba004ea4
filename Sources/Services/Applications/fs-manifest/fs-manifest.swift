// `fs-manifest`: prints every file of the shared folder with its size and CRC-32, sorted
// (the format and the bounds: Libraries/FileManifest/FSManifest.swift, tested on the host).
import Core
import FileManifest

@_silgen_name("toro_service")
public func service() -> Service {
    Service(name: "fs-manifest",
            summary: "prints each file of the shared folder (--share DIR) with its size and CRC-32, sorted, then exits 0",
            devices: [.files]) { FSManifestService.run($0) }
}

enum FSManifestService {
    static func run(_ context: ServiceContext) -> ExitStatus {
        let limits: FSManifest.Limits
        do throws(KernelArgumentError) {
            limits = try FSManifest.Limits(commandLine: context.commandLine)
        } catch {
            Log.write("fs-manifest: ")
            error.describe()
            Log.put(10)
            return .badCommandLine
        }
        guard let fileSystem = context.fileSystem else {
            Log.write("fs-manifest: no shared folder (on microvm, start with --share DIR)\n")
            return .serviceFailed
        }
        context.ready()
        let entries: [FSManifest.Entry]
        do throws(FSManifest.WalkError) {
            entries = try FSManifest.collect(fileSystem, limits: limits)
        } catch {
            for byte in FSManifest.describe(error) { Log.put(byte) }
            return .serviceFailed
        }
        for entry in entries {
            for byte in FSManifest.line(entry) { Log.put(byte) }
        }
        for byte in FSManifest.summary(count: entries.count) { Log.put(byte) }
        return .success
    }
}
