// The image's driver table, as the kernel sees it: the hooks `./toro build` writes per image
// (a C object; ToroTool's ImageLinker.driverTable) from the service's `devices:`. Each points
// at a platform's device scan or attach function, or is null, so an image links a driver
// only when its service uses that kind of device. Both PC platforms read them here.
import X86Asm

/// The image's driver table.
public enum DriverHooks {
    public typealias Attach = @convention(c) (UnsafeMutableRawPointer?) -> Bool
#if hasFeature(Embedded)
    public static var scan: Attach? { toro_driver_scan }
    public static var sockets: Attach? { toro_driver_sockets }
    public static var files: Attach? { toro_driver_files }
#else
    public static var scan: Attach? { nil }
    public static var sockets: Attach? { nil }
    public static var files: Attach? { nil }
#endif
}
