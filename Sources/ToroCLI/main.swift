// toro-cli: the host tool behind ./toro (see Sources/ToroTool/CLI.swift).
#if canImport(Glibc)
import Glibc
#endif
import ToroTool

exit(CLI.main(Array(CommandLine.arguments.dropFirst())))
