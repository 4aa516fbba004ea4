// The `toro` command: dispatches to a subcommand and returns the process exit status.
// The `toro` bash wrapper at the repository root builds this tool and runs it.

#if canImport(Glibc)
import Glibc
#endif

public enum CLI {
    public static func main(_ arguments: [String]) -> Int32 {
        ChildRegistry.installSignalHandlers()
        signal(SIGPIPE, SIG_IGN)
        let paths = Paths.fromEnvironment()
        guard let command = arguments.first else {
            Console.line(Usage.overview)
            return 0
        }
        let rest = Array(arguments.dropFirst())
        let beforeDashes = rest.prefix { $0 != "--" }
        if command == "help" || command == "--help" || command == "-h"
            || beforeDashes.contains("--help") || beforeDashes.contains("-h") {
            Console.line(Usage.forCommand(command))
            return 0
        }
        switch command {
        case "run": return RunCommand.main(rest, paths: paths)
        case "build": return BuildCommand.main(rest, paths: paths)
        case "compare": return CompareCommand.main(rest, paths: paths)
        case "test": return TestCommand.main(rest, paths: paths)
        case "bench": return BenchCommand.main(rest, paths: paths)
        case "new": return NewCommand.main(rest, paths: paths)
        case "services":
            guard rest.isEmpty else {
                Console.error("services takes no arguments")
                return ToroStatus.badArgument.rawValue
            }
            Console.line(Services.listing())
            return 0
        default:
            Console.error("unknown command '\(command)' (commands: run, build, compare, services, new, test, bench; see ./toro --help)")
            return ToroStatus.badArgument.rawValue
        }
    }
}
