// How many descriptors this process has open: the fuzz targets' leak check (a target that
// talks to real files and sockets must end each input with as many as it began with).
import Glibc

public func openDescriptors() -> Int {
    guard let dir = opendir("/proc/self/fd") else { return -1 }
    var count = 0
    while readdir(dir) != nil { count += 1 }
    closedir(dir)
    return count
}
