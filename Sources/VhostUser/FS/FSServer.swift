// `toro-fs`'s server: VhostUserServer (the shared event loop; its header gives the turn
// order) over an FSDevice. There are no host sockets: FUSE requests are answered in the
// turn they arrive.

public typealias FSServer = VhostUserServer<FSDevice>

extension FSDevice: HostSidePoller {}

extension VhostUserServer where Device == FSDevice {
    /// Opens the share, then listens on the socket (so once it exists, the share is open).
    public convenience init(options: FSOptions) throws(SystemError) {
        let server = try FUSEServer(root: options.sharePath, readOnly: options.readOnly, limits: options.limits)
        try self.init(device: FSDevice(server: server), socketPath: options.socketPath)
    }
}
