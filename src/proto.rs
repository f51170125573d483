//! Code generated from `proto/authd/v1/authd.proto`, and the encoded
//! descriptor set that server reflection serves.
#[allow(clippy::all, clippy::pedantic)]
pub mod authd {
    pub mod v1 {
        tonic::include_proto!("authd.v1");
    }

    pub mod bench {
        pub mod v1 {
            tonic::include_proto!("authd.bench.v1");
        }
    }
}

pub use authd::bench::v1 as bench;
pub use authd::v1;

pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/authd_descriptor.bin"));

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
