//! What a user should do when the hub's TLS certificate is refused.
//!
//! rustls names the failure (`invalid peer certificate: UnknownIssuer`) but not the fix, and
//! the usual cause with a dev hub is a client that was not given the hub's CA. This finds the
//! certificate failure anywhere in an error's chain (rustls' error travels inside an
//! `io::Error` from tokio-rustls, and inside reqwest's and hyper's errors) and says what to do.

use std::error::Error;

use rustls::CertificateError;

/// A sentence telling the user how to fix the certificate failure in `err`'s chain, or `None`
/// when the chain holds no certificate failure.
pub fn certificate_hint(err: &(dyn Error + 'static)) -> Option<&'static str> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(hint) = rustls_error(e).and_then(hint_for) {
            return Some(hint);
        }
        next = e.source();
    }
    None
}

// `io::Error::source` and a boxed error's `source` skip the error they wrap (they return
// that error's source), so a wrapped rustls error is reached by unwrapping them here.
fn rustls_error<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(r) = e.downcast_ref::<rustls::Error>() {
        return Some(r);
    }
    let inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    rustls_error(inner)
}

fn hint_for(e: &rustls::Error) -> Option<&'static str> {
    let rustls::Error::InvalidCertificate(cert) = e else {
        return None;
    };
    Some(match cert {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            "the hub's certificate is not signed by a CA this client trusts: give the client the \
             hub's CA certificate (adit: --ca-file or ADIT_CA_FILE; a hub with a generated dev \
             CA writes it to DATA_DIR/tls/ca.pem)"
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "the hub's certificate does not name the host this client dialled: use the name the \
             hub was started with (its --hostname), or restart the hub with --hostname set to \
             the name clients use"
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => {
            "the hub's certificate is outside its validity period: check the clocks of the hub \
             and of this machine, or renew the hub's certificate"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot connect")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn finds_the_failure_inside_io_errors_and_chains() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let outer = Outer(io);
        let hint = certificate_hint(&outer).expect("a hint");
        assert!(hint.contains("--ca-file"), "{hint}");
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert!(certificate_hint(&name).is_some_and(|h| h.contains("--hostname")));
    }

    #[test]
    fn other_errors_get_no_hint() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(certificate_hint(&refused), None);
        let other = rustls::Error::DecryptError;
        assert_eq!(certificate_hint(&other), None);
    }
}
