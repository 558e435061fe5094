//! The one TLS crypto provider every Adit endpoint uses.
//!
//! aws-lc-rs (feature `aws-lc`, the default), or ring (feature `ring`: the device agent, where
//! it saves about 2 MiB of binary; both carry assembly AES-GCM), with AES-128-GCM ahead of
//! AES-256-GCM. Stream bytes are encrypted twice on the
//! way through the hub and decrypted twice, so the cipher is a large share of the relay's
//! CPU; AES-128 does 10 rounds per block where AES-256 does 14, and it is the suite TLS 1.3
//! makes mandatory. The hub keeps rustls' default of honouring the client's order, so a
//! device without AES instructions that offers ChaCha20-Poly1305 first still gets it.

use rustls::SupportedCipherSuite;
use rustls::crypto::CryptoProvider;
#[cfg(feature = "aws-lc")]
use rustls::crypto::aws_lc_rs as chosen;
#[cfg(all(feature = "ring", not(feature = "aws-lc")))]
use rustls::crypto::ring as chosen;

#[cfg(not(any(feature = "aws-lc", feature = "ring")))]
compile_error!("adit-transport needs a TLS crypto provider: enable its feature aws-lc or ring");

use chosen::cipher_suite as suite;

/// The chosen provider with AES-128-GCM preferred, for both TLS 1.3 and 1.2.
pub fn provider() -> CryptoProvider {
    let preferred: [SupportedCipherSuite; 9] = [
        suite::TLS13_AES_128_GCM_SHA256,
        suite::TLS13_AES_256_GCM_SHA384,
        suite::TLS13_CHACHA20_POLY1305_SHA256,
        suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    CryptoProvider {
        cipher_suites: preferred.to_vec(),
        ..chosen::default_provider()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_default_suite_and_puts_aes_128_first() {
        let ours = provider();
        let default = chosen::default_provider();
        assert_eq!(ours.cipher_suites.len(), default.cipher_suites.len());
        for s in &default.cipher_suites {
            assert!(ours.cipher_suites.contains(s), "{:?} dropped", s.suite());
        }
        assert_eq!(
            ours.cipher_suites[0].suite(),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
        );
    }
}
