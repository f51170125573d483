//! Code generated from `proto/authd/v1/authd.proto`, and the encoded
//! descriptor set that server reflection serves.
#[allow(clippy::all, clippy::pedantic)]
pub mod authd {
    pub mod v1 {
        tonic::include_proto!("authd.v1");
    }
}

pub use authd::v1;

pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/authd_descriptor.bin"));

/// The package of the API authd serves.
pub const PACKAGE: &str = "authd.v1";

/// The standard RPCs served beside authd's own: health, reflection, and
/// Envoy's external authorization (Door 3, `crate::grpc::ext_authz`),
/// whose package is Envoy's, so that it is not in authd's descriptor set.
pub const STANDARD_RPCS: &[&str] = &[
    "/envoy.service.auth.v3.Authorization/Check",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// authd's services and RPCs, read from the compiled descriptor set: the
/// one declaration of the gRPC surface, so that a service or RPC added to
/// the proto is known to everything that lists them (health, metrics,
/// tests) without another list to edit.
pub struct Surface {
    /// Full service names, `authd.v1.OAuth`, in declaration order.
    pub services: Vec<&'static str>,
    /// Every RPC's path, `/authd.v1.OAuth/Introspect`, in declaration
    /// order, then [`STANDARD_RPCS`].
    pub rpcs: Vec<&'static str>,
}

/// The surface, read once.
pub fn surface() -> &'static Surface {
    static SURFACE: std::sync::LazyLock<Surface> = std::sync::LazyLock::new(|| {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET)
            .expect("the descriptor set compiled into authd decodes");
        // Leaked once: the names live as long as the process.
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let mut services = Vec::new();
        let mut rpcs = Vec::new();
        for file in set.file.iter().filter(|f| f.package() == PACKAGE) {
            for service in &file.service {
                let name = format!("{PACKAGE}.{}", service.name());
                for method in &service.method {
                    rpcs.push(leak(format!("/{name}/{}", method.name())));
                }
                services.push(leak(name));
            }
        }
        rpcs.extend_from_slice(STANDARD_RPCS);
        Surface { services, rpcs }
    });
    &SURFACE
}

impl v1::IntrospectResponse {
    /// The answer for any token that is not active (RFC 7662 section 2.2).
    pub fn inactive() -> Self {
        v1::IntrospectResponse {
            active: Some(false),
            ..Default::default()
        }
    }

    pub fn is_active(&self) -> bool {
        self.active == Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_surface_holds_every_service_and_rpc_of_the_api_once() {
        let surface = surface();
        for service in ["Apps", "OAuth", "Sessions", "Accounts", "Admin"] {
            assert!(
                surface
                    .services
                    .contains(&format!("authd.v1.{service}").as_str()),
                "{service}"
            );
        }
        assert!(!surface.services.iter().any(|s| s.contains("bench")));
        for rpc in [
            "/authd.v1.OAuth/Introspect",
            "/authd.v1.Accounts/EnableAccount",
            "/authd.v1.Accounts/ResetAccountPassword",
            "/authd.v1.Admin/RotateSigningKey",
            "/grpc.health.v1.Health/Check",
            "/envoy.service.auth.v3.Authorization/Check",
        ] {
            assert!(surface.rpcs.contains(&rpc), "{rpc}");
        }
        let mut unique = surface.rpcs.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), surface.rpcs.len());
    }
}
