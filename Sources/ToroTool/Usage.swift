// The text `./toro`, `./toro --help` and `./toro <command> --help` print.

public enum Usage {
    public static let overview = """
    toro: build and boot Toro unikernels (MicroVM: QEMU -M microvm, PVH; Legacy: QEMU -M pc, Multiboot)

    usage:
      ./toro run [--platform microvm|legacy] [--service NAME] [--cpus N] [--memory MIB]
                 [--share DIR[:ro] | --disk IMAGE] [-p HOSTPORT:GUESTPORT ... | --net-socket PATH]
                 [--accel auto|tcg|kvm] [--timeout SECONDS] [--print-command] [-- KERNEL-ARGS...]
      ./toro build [--service NAME|all] [--platform microvm|legacy|all]
      ./toro compare [--service NAME] [run options] [--expect FILE]
      ./toro services
      ./toro new NAME
      ./toro test
      ./toro bench boot [--runs N] [--cpus N]
      ./toro bench kv [--runs N] [--requests N] [--platform legacy|microvm|all]
      ./toro bench web [--runs N] [--requests N] [--platform legacy|microvm|all]
      ./toro bench soak [--seconds N]
      ./toro bench fs [--runs N]

    commands:
      run       build the kernel and boot one service; the guest's console is your terminal
      build     link the kernel with one service (default hello; all: every service) for each platform;
                the last lines are the images' paths
      compare   boot a service on both platforms and compare the service transcripts; with --share
                each platform gets its own copy of the folder (DIR is not changed) and the two
                copies must end identical too; a Compat scenario with a client script (client:)
                drives the service through each platform's forwarded port after 'ready:' and
                the replies must be what the script expects on both (Compat/README.md); -p H:G
                forwards a port of your own to each platform in turn
      services  list the services, one line each: the applications, then the kernel's probes
                (SMP, threads, the clock, interrupts, faults)
      new       create a service from the template: Sources/Services/Applications/NAME/NAME.swift
                and its test (the expected transcript beside it); then run, compare and test it
      test      install what is missing and run every test tier (what CI runs)
      bench     boot benchmark: Toro next to a do-nothing kernel, image sizes, smallest memory;
                `bench boot --cpus N` boots every kernel with N CPUs (default 1);
                `bench kv`: the kv service on each platform (TCG, through -p) next to a host-native server,
                requests/s and latency p50/p90/p99 with 1 and 50 connections, toro/host ratios per platform
                (defaults: 3 runs, 5000 requests, --platform all: microvm and legacy in one run);
                `bench web`: static-web on each platform (TCG; microvm --share, legacy an ext2 image; -p) next
                to python3 -m http.server on the same folder: requests/s for a 1 KiB file over 4 connections,
                MiB/s for a 64 MiB file, medians and toro/host ratios per platform (default --platform all);
                `bench fs`: the fsbench probe on legacy (ext2 over virtio-blk) and microvm (virtio-fs), TCG,
                --memory 256, and the host: time to read a 64 MiB file and to create 1,000 small files and
                sync, medians (default 3 runs) and guest/host ratios (the guest's own clock, not the boot);
                `bench soak`: kv, then static-web, each N s (default 60) with good clients beside an idle
                flood, a key flood, slow readers and garbage: success rate, latency, refusals, heap before
                and after (fails when a good request went unanswered or the heap did not come back)

    run defaults: --platform microvm --service hello --cpus 1 --memory 64 --accel auto --timeout 60
      --accel auto      TCG when the host's KVM is kvm-pvm or /dev/kvm is unusable, else KVM
      --print-command   print the exact QEMU command line (shell-quoted) and start nothing
      -p H:G            forward 127.0.0.1:H on the host to guest port G (repeatable, each H once);
                        microvm: toro-vsock (vhost-user vsock back-end) listens on 127.0.0.1:H and
                        bridges each TCP connection over virtio-vsock; legacy: a virtio-net NIC on
                        QEMU's user networking (-netdev user,hostfwd=tcp:127.0.0.1:H-:G), served by
                        Toro's TCP/IP (the guest is 10.0.2.15; the host is 10.0.2.2 to it); run
                        moves slirp's forward to an internal port and listens on H itself with a
                        full backlog, handing connections over one at a time (slirp's backlog is 1)
                        e.g. ./toro run --platform legacy --service kv -p 8080:80
                        A service that declares the sockets device gets its socket device (and, on
                        legacy, the NIC) even without -p; then it can connect out (hostping).
                        The port accepts before the guest answers: wait for the 'ready:' line.
      --net-socket PATH legacy only: put the NIC on an existing Unix stream socket instead of user
                        networking (-netdev stream,server=off,addr.type=unix: QEMU connects to PATH;
                        each Ethernet frame goes behind a 4-byte big-endian length); for a link of
                        your own (a relay, a tap bridge); not with -p
      --share DIR[:ro]  microvm: toro-fs (vhost-user virtio-fs back-end) serves DIR to the guest
                        (:ro refuses every change); at most one
                        e.g. ./toro run --service static-web --share ./site -p 8080:80
                        legacy: an ext2 image of DIR (mke2fs -d, from e2fsprogs; symlinks leading
                        out of DIR, devices and FIFOs left out) on virtio-blk-pci; after the guest
                        exits, e2fsck -fn checks it and, when clean, DIR is made to match it
                        (created, changed, renamed and deleted files and folders; never through a
                        link); when not clean DIR is untouched and the image's path is printed;
                        :ro attaches it read-only and writes nothing back
      --disk IMAGE      legacy only: attach an existing disk image (e.g. ext2) read-write, as it is;
                        the guest's writes stay in IMAGE across runs; not with --share
      --service NAME    one of the services `./toro services` lists (each with what it does)
      --cpus N          1 to 16 (the kernel's limit)
      -- KERNEL-ARGS    appended to the kernel command line after service=NAME,
                        e.g. ./toro run --service threadstress --cpus 4 --memory 512 -- threads=1000
                        socket services: max-conns=N (default from memory: 405 at 64 MiB),
                        backlog=N (64), idle-timeout=SECONDS (60; 0 = never)

    exit statuses (run; compare, build, test and bench use 0, 1, 64, 69, 70):
      0    the service succeeded
      1    the service reported a failure (compare: the transcripts differ; test: a test failed)
      2    the kernel rejected its command line (e.g. an unknown service)
      3    the guest panicked (CPU exception or kernel panic)
      64   bad argument: one line on stderr, nothing built or started
      69   a required tool is missing and could not be installed
      70   the kernel build failed
      124  timeout: the guest was killed after --timeout seconds
      125  QEMU failed to start, or the guest ended without an exit status

    Progress and errors go to stderr (prefixed 'toro: '); the guest's console and results to stdout.
    Environment: TORO_NO_BUILD=1 boots the images already built instead of building first.
    """

    public static func forCommand(_ command: String) -> String { overview }
}
