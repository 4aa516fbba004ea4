// The image's one service, as the platform's entry code hands it to `Kernel.start`.
//
// Every service module defines `toro_service` (Core/Service.swift); `./toro build --service
// NAME` links one of them into the image, so the reference below names exactly one
// definition. Hosted builds (the host tests link PC) have no service, hence the guard.
import Core

#if hasFeature(Embedded)
@_silgen_name("toro_service")
func toroService() -> Service

/// The service linked into this image.
public func imageService() -> Service { toroService() }
#endif
