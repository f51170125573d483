//! TLS for authd's two listeners and its two gRPC clients (the remote shim
//! and the health check), from PEM files, with rustls and its ring
//! provider. Files are read and checked once, at start-up, before anything
//! else starts: a missing, unreadable or malformed file, or a key that is
//! not the certificate's, stops authd with a message naming the flag and
//! the file.
//!
//! Both listeners' accept loops (in `connections`) drive a tokio-rustls
//! acceptor themselves, so that one deadline bounds the handshake and the
//! first request, and graceful shutdown keeps working; the gRPC one can
//! make client certificates required or optional.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, ValueEnum};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// Why a TLS setting cannot be used. Every message names the flag and, for
/// a file, its path.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("{flag} {}: cannot read the file: {error}", path.display())]
    Unreadable {
        flag: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{flag} {}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate { flag: &'static str, path: PathBuf },
    #[error("{flag} {}: holds no PEM private key (PKCS#8, PKCS#1 or SEC1)", path.display())]
    NoKey { flag: &'static str, path: PathBuf },
    #[error("{flag} {}: malformed PEM: {detail}", path.display())]
    MalformedPem {
        flag: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error(
        "{key_flag} {} is not the private key of the certificate in {cert_flag} {}",
        key_path.display(),
        cert_path.display()
    )]
    KeyMismatch {
        key_flag: &'static str,
        key_path: PathBuf,
        cert_flag: &'static str,
        cert_path: PathBuf,
    },
    #[error("{flag} {}: cannot be used: {detail}", path.display())]
    Unusable {
        flag: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error("{given} needs {missing} as well (give both or neither)")]
    Incomplete {
        given: &'static str,
        missing: &'static str,
    },
    #[error("{flag} needs {needs}")]
    Needs {
        flag: &'static str,
        needs: &'static str,
    },
}

type Result<T> = std::result::Result<T, TlsConfigError>;

/// Whether the gRPC listener insists on a client certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClientAuth {
    /// A client without a certificate is refused.
    Required,
    /// A client without a certificate is let in; one that presents a
    /// certificate the CAs did not sign is still refused.
    Optional,
}

impl ClientAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::Required => "required",
            ClientAuth::Optional => "optional",
        }
    }
}

// ---- Flags ----

/// TLS on the gRPC listener.
#[derive(Args, Clone, Debug, Default)]
pub struct GrpcTlsArgs {
    /// PEM certificate chain of the gRPC listener, the server's own
    /// certificate first. With --grpc-tls-key, the gRPC port speaks TLS
    /// only. Default: none (plaintext).
    #[arg(long, env = "AUTHD_GRPC_TLS_CERT", value_name = "FILE")]
    pub grpc_tls_cert: Option<PathBuf>,

    /// PEM private key of --grpc-tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "AUTHD_GRPC_TLS_KEY", value_name = "FILE")]
    pub grpc_tls_key: Option<PathBuf>,

    /// PEM bundle of the CAs whose client certificates the gRPC listener
    /// accepts; turns on client certificate verification. Default: none
    /// (no client certificates asked for).
    #[arg(long, env = "AUTHD_GRPC_TLS_CLIENT_CA", value_name = "FILE")]
    pub grpc_tls_client_ca: Option<PathBuf>,

    /// With --grpc-tls-client-ca: "required" (the default) refuses a
    /// client without a certificate; "optional" lets it in. Either way a
    /// certificate the CAs did not sign is refused.
    #[arg(long, env = "AUTHD_GRPC_TLS_CLIENT_AUTH", value_enum)]
    pub grpc_tls_client_auth: Option<ClientAuth>,
}

/// TLS on the HTTP listener.
#[derive(Args, Clone, Debug, Default)]
pub struct HttpTlsArgs {
    /// PEM certificate chain of the HTTP listener, the server's own
    /// certificate first. With --http-tls-key, the HTTP port speaks https
    /// only (HTTP/2 and HTTP/1.1) and cookies are Secure. Default: none
    /// (plaintext).
    #[arg(long, env = "AUTHD_HTTP_TLS_CERT", value_name = "FILE")]
    pub http_tls_cert: Option<PathBuf>,

    /// PEM private key of --http-tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "AUTHD_HTTP_TLS_KEY", value_name = "FILE")]
    pub http_tls_key: Option<PathBuf>,
}

/// How `authd shim` reaches a core whose gRPC port speaks TLS (an
/// https:// --upstream).
#[derive(Args, Clone, Debug, Default)]
pub struct UpstreamTlsArgs {
    /// PEM bundle of the CAs that may sign the core's certificate. Default:
    /// the system's roots.
    #[arg(long, env = "AUTHD_UPSTREAM_CA", value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,

    /// PEM client certificate the shim presents to the core (when the core
    /// asks for one). Default: none.
    #[arg(long, env = "AUTHD_UPSTREAM_TLS_CERT", value_name = "FILE")]
    pub upstream_tls_cert: Option<PathBuf>,

    /// PEM private key of --upstream-tls-cert.
    #[arg(long, env = "AUTHD_UPSTREAM_TLS_KEY", value_name = "FILE")]
    pub upstream_tls_key: Option<PathBuf>,
}

/// How `authd healthcheck` reaches a gRPC port that speaks TLS.
#[derive(Args, Clone, Debug, Default)]
pub struct HealthcheckTlsArgs {
    /// PEM bundle of the CAs that may sign the server's certificate; turns
    /// TLS on (as does an https:// --addr, which trusts the system's
    /// roots). Default: none (plaintext).
    #[arg(long, env = "AUTHD_HEALTHCHECK_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// PEM client certificate to present, for a port that requires one.
    /// Default: none.
    #[arg(long, env = "AUTHD_HEALTHCHECK_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "AUTHD_HEALTHCHECK_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// The name the server's certificate must carry. Default: the host of
    /// --addr.
    #[arg(long, env = "AUTHD_HEALTHCHECK_TLS_SERVER_NAME")]
    pub tls_server_name: Option<String>,
}

impl GrpcTlsArgs {
    /// The gRPC listener's TLS, or none. (Each handshake is bounded by the
    /// listener's first-request deadline, in `connections`.)
    pub fn load(&self) -> Result<Option<GrpcServerTls>> {
        let pair = both_or_neither(
            ("--grpc-tls-cert", &self.grpc_tls_cert),
            ("--grpc-tls-key", &self.grpc_tls_key),
        )?;
        let Some((cert, key)) = pair else {
            if self.grpc_tls_client_ca.is_some() {
                return Err(TlsConfigError::Needs {
                    flag: "--grpc-tls-client-ca",
                    needs: "--grpc-tls-cert and --grpc-tls-key",
                });
            }
            if self.grpc_tls_client_auth.is_some() {
                return Err(TlsConfigError::Needs {
                    flag: "--grpc-tls-client-auth",
                    needs: "--grpc-tls-client-ca",
                });
            }
            return Ok(None);
        };
        let client_ca = match (&self.grpc_tls_client_ca, self.grpc_tls_client_auth) {
            (Some(ca), mode) => Some((
                PemFile::new("--grpc-tls-client-ca", ca),
                mode.unwrap_or(ClientAuth::Required),
            )),
            (None, Some(_)) => {
                return Err(TlsConfigError::Needs {
                    flag: "--grpc-tls-client-auth",
                    needs: "--grpc-tls-client-ca",
                });
            }
            (None, None) => None,
        };
        GrpcServerTls::load(cert, key, client_ca).map(Some)
    }
}

impl HttpTlsArgs {
    /// The HTTP listener's TLS, or none.
    pub fn load(&self) -> Result<Option<HttpServerTls>> {
        let pair = both_or_neither(
            ("--http-tls-cert", &self.http_tls_cert),
            ("--http-tls-key", &self.http_tls_key),
        )?;
        pair.map(|(cert, key)| HttpServerTls::load(cert, key))
            .transpose()
    }
}

impl UpstreamTlsArgs {
    /// The shim's TLS towards the core at `upstream`: `None` for an
    /// http:// upstream (which these flags cannot go with).
    pub fn load(&self, upstream: &str) -> Result<Option<GrpcClientTls>> {
        let identity = both_or_neither(
            ("--upstream-tls-cert", &self.upstream_tls_cert),
            ("--upstream-tls-key", &self.upstream_tls_key),
        )?;
        if !upstream.starts_with("https://") {
            if self.upstream_ca.is_some() || identity.is_some() {
                return Err(TlsConfigError::Needs {
                    flag: if self.upstream_ca.is_some() {
                        "--upstream-ca"
                    } else {
                        "--upstream-tls-cert"
                    },
                    needs: "an https:// --upstream",
                });
            }
            return Ok(None);
        }
        let ca = self
            .upstream_ca
            .as_deref()
            .map(|p| PemFile::new("--upstream-ca", p));
        GrpcClientTls::load(ca, identity, None).map(Some)
    }
}

impl HealthcheckTlsArgs {
    /// TLS for the health check, or none: on with --tls-ca, or when `https`
    /// (an https:// address).
    pub fn load(&self, https: bool) -> Result<Option<GrpcClientTls>> {
        let identity =
            both_or_neither(("--tls-cert", &self.tls_cert), ("--tls-key", &self.tls_key))?;
        if !https && self.tls_ca.is_none() {
            if identity.is_some() {
                return Err(TlsConfigError::Needs {
                    flag: "--tls-cert",
                    needs: "--tls-ca (or an https:// --addr)",
                });
            }
            return Ok(None);
        }
        let ca = self.tls_ca.as_deref().map(|p| PemFile::new("--tls-ca", p));
        GrpcClientTls::load(ca, identity, self.tls_server_name.clone()).map(Some)
    }
}

/// Both flags of a pair, or neither.
fn both_or_neither<'a>(
    first: (&'static str, &'a Option<PathBuf>),
    second: (&'static str, &'a Option<PathBuf>),
) -> Result<Option<(PemFile<'a>, PemFile<'a>)>> {
    match (first.1, second.1) {
        (Some(a), Some(b)) => Ok(Some((PemFile::new(first.0, a), PemFile::new(second.0, b)))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(TlsConfigError::Incomplete {
            given: first.0,
            missing: second.0,
        }),
        (None, Some(_)) => Err(TlsConfigError::Incomplete {
            given: second.0,
            missing: first.0,
        }),
    }
}

// ---- What the listeners and clients use ----

/// The gRPC listener's TLS: a rustls acceptor offering HTTP/2 alone (as
/// gRPC needs), with the client-certificate policy.
#[derive(Clone)]
pub struct GrpcServerTls {
    acceptor: tokio_rustls::TlsAcceptor,
    client_auth: Option<ClientAuth>,
}

impl std::fmt::Debug for GrpcServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServerTls")
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

impl GrpcServerTls {
    fn load(
        cert: PemFile<'_>,
        key: PemFile<'_>,
        client_ca: Option<(PemFile<'_>, ClientAuth)>,
    ) -> Result<GrpcServerTls> {
        install_default_provider();
        let identity = KeyPair::load(cert, key)?;
        let builder = server_builder(&cert)?;
        let (builder, client_auth) = match client_ca {
            None => (builder.with_no_client_auth(), None),
            Some((ca, mode)) => {
                let (_, roots) = load_roots(ca)?;
                let verifier =
                    rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider());
                let verifier = match mode {
                    ClientAuth::Required => verifier,
                    ClientAuth::Optional => verifier.allow_unauthenticated(),
                }
                .build()
                .map_err(|e| ca.unusable(e))?;
                (builder.with_client_cert_verifier(verifier), Some(mode))
            }
        };
        let mut config = builder
            .with_single_cert(identity.certs, identity.key)
            .map_err(|e| cert.unusable(e))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(GrpcServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            client_auth,
        })
    }

    pub fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    /// Whether client certificates are asked for, and how: `None` when
    /// they are not.
    pub fn client_auth(&self) -> Option<ClientAuth> {
        self.client_auth
    }
}

/// The HTTP listener's TLS: a rustls acceptor offering HTTP/2 and
/// HTTP/1.1 by ALPN.
#[derive(Clone)]
pub struct HttpServerTls {
    acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for HttpServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServerTls").finish_non_exhaustive()
    }
}

impl HttpServerTls {
    fn load(cert: PemFile<'_>, key: PemFile<'_>) -> Result<HttpServerTls> {
        let identity = KeyPair::load(cert, key)?;
        let mut config = server_builder(&cert)?
            .with_no_client_auth()
            .with_single_cert(identity.certs, identity.key)
            .map_err(|e| cert.unusable(e))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(HttpServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }

    pub fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }
}

/// A gRPC client's TLS: whom it trusts, and the certificate it presents.
#[derive(Clone)]
pub struct GrpcClientTls {
    config: ClientTlsConfig,
}

impl std::fmt::Debug for GrpcClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // tonic's own Debug would print the private key.
        f.debug_struct("GrpcClientTls").finish_non_exhaustive()
    }
}

impl GrpcClientTls {
    fn load(
        ca: Option<PemFile<'_>>,
        identity: Option<(PemFile<'_>, PemFile<'_>)>,
        server_name: Option<String>,
    ) -> Result<GrpcClientTls> {
        install_default_provider();
        let mut config = match ca {
            Some(ca) => {
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(load_roots(ca)?.0))
            }
            None => ClientTlsConfig::new().with_native_roots(),
        };
        if let Some((cert, key)) = identity {
            config = config.identity(KeyPair::load(cert, key)?.tonic_identity());
        }
        if let Some(name) = server_name {
            config = config.domain_name(name);
        }
        Ok(GrpcClientTls { config })
    }

    pub fn client_config(&self) -> ClientTlsConfig {
        self.config.clone()
    }
}

// ---- Files ----

/// A PEM file named by a flag: errors name both.
#[derive(Clone, Copy)]
struct PemFile<'a> {
    flag: &'static str,
    path: &'a Path,
}

impl<'a> PemFile<'a> {
    fn new(flag: &'static str, path: &'a Path) -> PemFile<'a> {
        PemFile { flag, path }
    }

    fn read(&self) -> Result<Vec<u8>> {
        std::fs::read(self.path).map_err(|error| TlsConfigError::Unreadable {
            flag: self.flag,
            path: self.path.to_owned(),
            error,
        })
    }

    fn malformed(&self, e: pem::Error) -> TlsConfigError {
        TlsConfigError::MalformedPem {
            flag: self.flag,
            path: self.path.to_owned(),
            detail: e.to_string(),
        }
    }

    fn unusable(&self, e: impl std::fmt::Display) -> TlsConfigError {
        TlsConfigError::Unusable {
            flag: self.flag,
            path: self.path.to_owned(),
            detail: e.to_string(),
        }
    }

    /// The file's certificates, at least one.
    fn certificates(&self) -> Result<(Vec<u8>, Vec<CertificateDer<'static>>)> {
        let pem = self.read()?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.malformed(e))?;
        if certs.is_empty() {
            return Err(TlsConfigError::NoCertificate {
                flag: self.flag,
                path: self.path.to_owned(),
            });
        }
        Ok((pem, certs))
    }

    /// The file's private key.
    fn private_key(&self) -> Result<(Vec<u8>, PrivateKeyDer<'static>)> {
        let pem = self.read()?;
        match PrivateKeyDer::from_pem_slice(&pem) {
            Ok(key) => Ok((pem, key)),
            Err(pem::Error::NoItemsFound) => Err(TlsConfigError::NoKey {
                flag: self.flag,
                path: self.path.to_owned(),
            }),
            Err(e) => Err(self.malformed(e)),
        }
    }
}

/// A certificate chain and its private key, read and checked to belong
/// together. The PEM texts are kept for tonic, which parses its own.
struct KeyPair {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl KeyPair {
    fn load(cert: PemFile<'_>, key: PemFile<'_>) -> Result<KeyPair> {
        let (cert_pem, certs) = cert.certificates()?;
        let (key_pem, private_key) = key.private_key()?;
        let signing_key = provider()
            .key_provider
            .load_private_key(private_key.clone_key())
            .map_err(|e| key.unusable(e))?;
        match rustls::sign::CertifiedKey::new(certs.clone(), signing_key).keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(TlsConfigError::KeyMismatch {
                    key_flag: key.flag,
                    key_path: key.path.to_owned(),
                    cert_flag: cert.flag,
                    cert_path: cert.path.to_owned(),
                });
            }
            Err(e) => return Err(cert.unusable(e)),
        }
        Ok(KeyPair {
            cert_pem,
            key_pem,
            certs,
            key: private_key,
        })
    }

    fn tonic_identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, &self.key_pem)
    }
}

/// A CA bundle: its PEM text and its certificates as trust anchors.
fn load_roots(ca: PemFile<'_>) -> Result<(Vec<u8>, Arc<RootCertStore>)> {
    let (pem, certs) = ca.certificates()?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| ca.unusable(e))?;
    }
    Ok((pem, Arc::new(roots)))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_builder(
    cert: &PemFile<'_>,
) -> Result<rustls::ConfigBuilder<ServerConfig, rustls::WantsVerifier>> {
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| cert.unusable(e))
}

/// tonic builds its rustls configurations with the process's default
/// provider: make it ring, whatever other crates enable.
fn install_default_provider() {
    // An error means a provider is installed already; that one stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
