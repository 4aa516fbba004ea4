// `toro-vsock`'s server: VhostUserServer (the shared event loop; its header gives the turn
// order) over a VsockDevice whose host side is the hybrid socket, the `--forward`
// listeners and every bridged socket.

public typealias VsockServer = VhostUserServer<VsockDevice>

extension VsockDevice: HostSidePoller {}

extension VhostUserServer where Device == VsockDevice {
    /// Opens every listener (the hybrid socket and forwards first, the vhost-user socket
    /// last, so that once `--socket` exists everything accepts).
    public convenience init(options: VsockOptions) throws(SystemError) {
        let device = VsockDevice(guestCID: options.guestCID, udsPath: options.udsPath)
        device.maxConnections = options.maxConnections
        try self.init(device: device,
                      socketPath: options.socketPath, alsoRemoves: options.udsPath.map { [$0] } ?? []) {
            device throws(SystemError) in
            try device.listenHybrid()
            for forward in options.forwards { try device.listenForward(forward) }
        }
    }
}
