// Legacy's files: the virtio-blk attach function. The disk behind a modern virtio-blk-pci
// function gets the driver (BlkDriver), its INTx line (shared, chained by the platform),
// and the ext2 file system mounted over a buffer cache of `cache-blocks=N` blocks
// (default 1024), read-only when the device is. At the service's exit (Kernel.beforeExit)
// the file system is unmounted: dirty blocks written in block order, the device flushed,
// the superblock marked clean, the cache's statistics logged.
//
// Only the image's driver table references this module (Legacy/LegacyDevices.swift).
import BlkDriver
import Core
import Legacy
import PC
import VirtIO
import VirtIOPCI
import X86Asm

enum LegacyBlockArguments {
    static let cacheBlocksDefault = 1024

    /// `cache-blocks=N` (16-65536): the buffer cache's capacity in file-system blocks.
    static func cacheBlocks(_ commandLine: KernelCommandLine) throws(KernelArgumentError) -> Int {
        try commandLine.number("cache-blocks", minimum: 16, maximum: 65536) ?? cacheBlocksDefault
    }
}

#if hasFeature(Embedded)
@_cdecl("toro_attach_files_pci")
func attachFilesPCI(_ raw: UnsafeMutableRawPointer?) -> Bool {
    guard let raw else { return false }
    let attachment = Unmanaged<PCIDeviceAttachment>.fromOpaque(raw).takeUnretainedValue()
    let scan = attachment.scan, function = attachment.function
    let timeout: Int, cacheBlocks: Int
    do throws(KernelArgumentError) {
        timeout = try VirtIOBlockLimits.timeoutSeconds(scan.commandLine)
        cacheBlocks = try LegacyBlockArguments.cacheBlocks(scan.commandLine)
    } catch {
        Log.write("devices: ")
        error.describe()
        Log.put(10)
        scan.badArgument = true
        return false
    }
    let memory = IdentityMemory(ranges: scan.ram.map { GuestRange(start: $0.start, end: $0.end) })
    guard let disk = VirtIOBlockDriver(transport: attachment.transport, memory: memory, now: scan.now,
                                       pause: { arch_pause() }, timeoutSeconds: timeout) else { return false }
    scan.route(Int(function.interruptLine)) { disk.handleInterrupt() }
    // The mount runs now, before the scheduler: the driver polls the used ring.
    let mounted: Ext2FileSystem
    do throws(Ext2MountError) {
        mounted = try Ext2FileSystem.mount(device: disk, cacheCapacity: cacheBlocks, readOnly: disk.isReadOnly)
    } catch {
        logPCIFound("virtio-blk", function)
        Log.write(": ")
        for byte in error.message { Log.put(byte) }
        Log.write("; no files\n")
        return false
    }
    disk.polling = false
    scan.fileSystem = mounted
    logPCIFound("virtio-blk", function)
    Log.write(", ")
    Log.decimal(disk.sectorCount / 2048)
    Log.write(" MiB, ext2 with ")
    Log.decimal(UInt64(mounted.cache.blockSize))
    Log.write("-byte blocks, a cache of ")
    Log.decimal(UInt64(cacheBlocks))
    Log.write(disk.isReadOnly ? " blocks, read-only\n" : " blocks\n")
    Kernel.beforeExit.append {
        do throws(FileSystemError) {
            try mounted.unmount()
        } catch {
            Log.timestamp()
            Log.write("ext2: the final sync failed: ")
            Log.write(error.reason)
            Log.put(10)
        }
        let stats = mounted.cache.statistics
        Log.timestamp()
        Log.write("ext2: cache hits ")
        Log.decimal(stats.hits)
        Log.write(", misses ")
        Log.decimal(stats.misses)
        Log.write(", blocks read ")
        Log.decimal(stats.reads)
        Log.write(", written ")
        Log.decimal(stats.writes)
        Log.write(", dirty evictions ")
        Log.decimal(stats.dirtyEvictions)
        Log.put(10)
    }
    return true
}
#endif
