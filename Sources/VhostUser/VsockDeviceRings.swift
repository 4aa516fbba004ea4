// The vsock device's two data queues (virtio 1.2 §5.10.2, §5.10.6): tx chains carry a
// header and payload from the guest (device-readable); rx chains are empty buffers the
// guest posts for the device to fill with a header and payload (device-writable). There
// are no mergeable buffers: one packet per rx chain (§5.10.6.3.1), and a payload never
// exceeds what the guest's credit allows (§5.10.6.3).
//
// Distrust (VirtIO's DeviceQueue validates every descriptor): a tx chain too short for a
// header, a header that does not decode, or a length beyond the chain is logged and the
// chain returned unread; an rx chain too small for a header is returned empty.
import VirtIO
import Wire

extension VsockDevice {
    /// The most bytes read from one tx chain: a header and the largest payload accepted.
    static let maximumPacket = VsockHeader.size + Int(VsockHeader.defaultMaximumPayload)

    /// Takes every tx chain the guest has posted and acts on its packet.
    public func processTX() {
        guard let tx else { return }
        var processed = 0
        while let chain = tx.pop() {
            processed += 1
            let count = Int(min(chain.readableBytes, UInt64(VsockDevice.maximumPacket)))
            var bytes = [UInt8](repeating: 0, count: count)
            let copied: Int? = bytes.withUnsafeMutableBytes { raw in
                do throws(VirtqueueError) { return try chain.readReadable(tx.memory, into: raw) } catch { return nil }
            }
            if let copied, copied == count {
                handlePacketBytes(bytes)
            } else {
                BackendLog.limited("tx-unreadable", "tx chain \(chain.head): unreadable buffer; dropped")
            }
            tx.complete(chain.head, length: 0)
            if processed % 64 == 0 { tx.notifyIfNeeded() }
        }
        tx.notifyIfNeeded()
        fillRX()
    }

    /// Decodes one tx packet and handles it; malformed packets are logged and dropped.
    func handlePacketBytes(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            do throws(VsockPacketError) {
                let header = try VsockHeader.decode(raw)
                handleGuestPacket(header, payload: UnsafeRawBufferPointer(rebasing: raw[VsockHeader.size...]))
            } catch {
                // One kind per error case (the text up to its values), so each is reported.
                BackendLog.limited("tx-" + String(String(describing: error).prefix { $0 != "(" }), "tx packet dropped: \(error)")
                // The RST goes back only for a packet from this guest to the host: its source
                // is the packet's destination, and must never be a CID the guest made up.
                if case .unsupportedType = error, let reset = VsockHeader.reset(replyingToUndecodable: raw),
                   reset.destination.cid == guestCID, reset.source.cid == VsockAddress.hostCID {
                    queueControl(reset, key: nil)
                }
            }
        }
    }

    /// Whether any packet is waiting for an rx buffer.
    var hasRXWork: Bool { !control.isEmpty || !ready.isEmpty }

    /// Fills the guest's posted rx buffers with waiting packets, then interrupts it.
    public func fillRX() {
        guard let rx else { return }
        while hasRXWork, let chain = rx.pop() {
            guard chain.writableBytes >= UInt64(VsockHeader.size) else {
                BackendLog.limited("rx-small", "rx chain \(chain.head): \(chain.writableBytes) writable bytes, too small for a header; returned empty")
                rx.complete(chain.head, length: 0)
                continue
            }
            guard let (header, payload) = nextPacket(room: chain.writableBytes - UInt64(VsockHeader.size)) else {
                // Nothing could go after all (credit ran out): give the buffer back unused.
                rx.complete(chain.head, length: 0)
                break
            }
            var bytes = [UInt8](repeating: 0, count: VsockHeader.size + payload.count)
            bytes.withUnsafeMutableBytes { raw in
                header.encode(into: raw)
                if !payload.isEmpty {
                    UnsafeMutableRawBufferPointer(rebasing: raw[VsockHeader.size...]).copyBytes(from: payload)
                }
            }
            let written: Int? = bytes.withUnsafeBytes { raw in
                do throws(VirtqueueError) { return try chain.writeWritable(rx.memory, from: raw) } catch { return nil }
            }
            rx.complete(chain.head, length: UInt32(written ?? 0))
        }
        rx.notifyIfNeeded()
    }

    /// The next packet for an rx buffer with `room` payload bytes: a control packet first,
    /// else the next ready connection's data (or SHUTDOWN), round-robin.
    func nextPacket(room: UInt64) -> (VsockHeader, ArraySlice<UInt8>)? {
        if !control.isEmpty {
            var (header, key) = control.removeFirst()
            if let key, let connection = connections[key] {
                connection.credit.stamp(&header)
                if header.op == .creditUpdate { connection.creditUpdateQueued = false }
            }
            return (header, [])
        }
        while !ready.isEmpty {
            let key = ready.removeFirst()
            guard let connection = connections[key] else { continue }
            guard connection.hasGuestWork else { afterSending(connection); continue }
            if connection.pendingToGuest > 0 {
                let limit = min(room, UInt64(connection.credit.peerFree), UInt64(VsockHeader.defaultMaximumPayload))
                guard limit > 0 else { ready.append(key); return nil }
                let payload = connection.takeToGuest(Int(limit))
                connection.credit.recordSent(UInt32(payload.count))
                let header = connection.header(.rw, guestCID: guestCID, length: UInt32(payload.count))
                afterSending(connection)
                return (header, payload)
            }
            connection.shutdownSent = true
            BackendLog.debug("\(key): host side finished sending")
            return (connection.header(.shutdown, guestCID: guestCID, flags: VsockShutdown.send.rawValue), [])
        }
        return nil
    }

    /// After data went to the guest: reschedule, or ask for credit when it ran out while
    /// the host may have more to send (§5.10.6.3: CREDIT_REQUEST).
    func afterSending(_ connection: BridgedConnection) {
        if connection.hasGuestWork {
            ready.append(connection.key)
        } else if connection.credit.peerFree == 0, connection.pendingToGuest > 0 || !connection.hostEOF,
                  !connection.creditRequested, connection.state == .established {
            connection.creditRequested = true
            queueControl(connection.header(.creditRequest, guestCID: guestCID, stamp: false), key: connection.key)
        }
    }
}
