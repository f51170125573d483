//! The subject of the client certificate of a gRPC call over TLS, in a span
//! around the call (`tls{client=CN=shim-1}:rpc{...}`), so that every log
//! line of the call, its `rpc` line included, says which client it was.
//! rustls has verified the certificate by the time a request exists;
//! without one, nothing is added. The layer sits outside `trace`, whose
//! span is created inside this one.
use std::task::{Context, Poll};

use tokio_rustls::rustls::pki_types::CertificateDer;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::instrument::Instrumented;

/// On a listener that asks for client certificates; elsewhere the layer
/// only passes calls through.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientCertLayer {
    enabled: bool,
}

impl ClientCertLayer {
    pub fn new(enabled: bool) -> ClientCertLayer {
        ClientCertLayer { enabled }
    }
}

impl<S> Layer<S> for ClientCertLayer {
    type Service = ClientCert<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientCert {
            inner,
            enabled: self.enabled,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ClientCert<S> {
    inner: S,
    enabled: bool,
}

impl<S, B> Service<http::Request<B>> for ClientCert<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::Either<S::Future, Instrumented<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if !self.enabled {
            return futures::future::Either::Left(self.inner.call(request));
        }
        let subject = request
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|info| info.peer_certs())
            .and_then(|certs| certs.first().and_then(subject));
        match subject {
            None => futures::future::Either::Left(self.inner.call(request)),
            Some(subject) => {
                let span = tracing::info_span!("tls", client = %subject);
                // Spans the inner layers make in `call` become its children.
                let future = span.in_scope(|| self.inner.call(request));
                futures::future::Either::Right(future.instrument(span))
            }
        }
    }
}

/// A certificate's subject, as RFC 4514 writes it (`CN=shim-1,O=Example`).
pub fn subject(cert: &CertificateDer<'_>) -> Option<String> {
    use x509_cert::der::Decode;
    x509_cert::Certificate::from_der(cert)
        .ok()
        .map(|cert| cert.tbs_certificate.subject.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_of_a_certificate_is_its_distinguished_name() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "shim-1");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let subject = subject(cert.der()).unwrap();
        assert!(subject.contains("CN=shim-1"), "{subject}");
        assert!(subject.contains("O=Example"), "{subject}");
    }

    #[test]
    fn garbage_has_no_subject() {
        assert_eq!(
            subject(&CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])),
            None
        );
    }
}
