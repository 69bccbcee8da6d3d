//! Micro-benchmarks of the hot sans-IO paths (issue 8, point 6): the CSTP codec, the
//! MCA signature check, client chain validation and aggregate-auth XML parsing.
//!
//! Every group carries a baseline measured in the same run (a plain copy of the same
//! bytes, one bare signature verification) so that `bench/micro.sh` can report ratios.
//! Certificates and keys are generated at start-up with `vpn_core::pki::testpki`.
//!
//! Run: `cargo bench -p vpn-core --bench micro` (or `bench/micro.sh` for the table).

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cms::cert::CertificateChoices;
use cms::cert::x509::Certificate;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerInfos};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use der::asn1::{ObjectIdentifier, SetOfVec};
use der::{Any, Decode, Encode};
use rustls_pki_types::CertificateDer;
use vpn_core::aggauth::ClientMessage;
use vpn_core::config::{Revocation, Trustpoint, ValidationUsage};
use vpn_core::cstp::{self, Decoded, Frame, FrameDecoder, HEADER_LEN};
use vpn_core::mca::{ChallengeStore, McaChallenge, McaHash, verify_reply, verify_signature};
use vpn_core::pki::TrustStore;
use vpn_core::pki::testpki::{LeafOptions, TEST_NOW, TestCa, TestCert, TestKeyType};

criterion_group!(
    benches,
    cstp_codec,
    cstp_stream,
    mca_signature,
    chain_validation,
    aggauth_parsing
);
criterion_main!(benches);

/// Data frame payload sizes: a small packet and a full-MTU one.
const PAYLOAD_SIZES: [usize; 2] = [64, 1400];

fn cstp_codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("cstp_codec");
    for size in PAYLOAD_SIZES {
        let payload = ip_packet(size);
        let mut frame_bytes = Vec::new();
        cstp::encode_to_vec(&Frame::Data(&payload), &mut frame_bytes).expect("encodable frame");
        let mut out = vec![0u8; size + HEADER_LEN];
        group.throughput(Throughput::Bytes(frame_bytes.len() as u64));

        group.bench_with_input(
            BenchmarkId::new("memcpy_baseline", size),
            &frame_bytes,
            |b, bytes| {
                b.iter(|| {
                    out.copy_from_slice(black_box(bytes));
                    black_box(&out);
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("encode_data", size),
            &payload,
            |b, payload| {
                b.iter(|| cstp::encode(&Frame::Data(black_box(payload)), &mut out));
            },
        );
        group.bench_with_input(
            BenchmarkId::new("decode_data", size),
            &frame_bytes,
            |b, bytes| {
                b.iter(|| match cstp::decode(black_box(bytes)) {
                    Ok(Decoded::Complete {
                        frame: Frame::Data(data),
                        ..
                    }) => {
                        out[..data.len()].copy_from_slice(data);
                        black_box(&out);
                    }
                    other => panic!("not a data frame: {other:?}"),
                });
            },
        );
    }
    group.finish();
}

/// 64 KiB of 1400-byte data frames arriving in TLS-record-sized reads (16 KiB), and in
/// small reads (1000 B) so that almost every frame is split across two reads.
fn cstp_stream(c: &mut Criterion) {
    let payload = ip_packet(1400);
    let mut stream = Vec::new();
    while stream.len() < 64 * 1024 {
        cstp::encode_to_vec(&Frame::Data(&payload), &mut stream).expect("encodable frame");
    }
    let frames = stream.len() / (payload.len() + HEADER_LEN);
    let mut group = c.benchmark_group("cstp_stream");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    for read_size in [16 * 1024, 1000] {
        let mut sink = vec![0u8; 1500];
        group.bench_with_input(
            BenchmarkId::new("memcpy_baseline", read_size),
            &stream,
            |b, stream| {
                let mut buffer = vec![0u8; 2 * cstp::MAX_FRAME_LEN];
                b.iter(|| {
                    for chunk in black_box(stream).chunks(read_size) {
                        buffer[..chunk.len()].copy_from_slice(chunk);
                    }
                    black_box(&buffer);
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("frame_decoder", read_size),
            &stream,
            |b, stream| {
                let mut decoder = FrameDecoder::new();
                b.iter(|| {
                    let mut seen = 0;
                    for mut chunk in black_box(stream).chunks(read_size) {
                        while !chunk.is_empty() {
                            let taken = decoder.push(chunk).expect("decoder not poisoned");
                            chunk = &chunk[taken..];
                            while let Some(frame) = decoder.next_frame().expect("valid frame") {
                                if let Frame::Data(data) = frame {
                                    sink[..data.len()].copy_from_slice(data);
                                    seen += 1;
                                }
                            }
                        }
                    }
                    assert_eq!(seen, frames);
                    black_box(&sink);
                });
            },
        );
    }
    group.finish();
}

/// A user identity of one key type: certificate, PKCS#8 key, and its signature over
/// one MCA challenge.
struct McaUser {
    name: &'static str,
    cert: TestCert,
    challenge: McaChallenge,
    signature: Vec<u8>,
}

fn mca_user(ca: &TestCa, name: &'static str, key_type: TestKeyType) -> McaUser {
    let cert = ca
        .issue(&LeafOptions {
            key_type,
            ..LeafOptions::client("jdoe")
        })
        .expect("user certificate");
    let challenge = McaChallenge::new("RAVPN-MultiCert", "1700000000000").expect("challenge");
    let pkcs8 = pem_der(&cert.key_pem);
    let rng = SystemRandom::new();
    let signature = match key_type {
        TestKeyType::Rsa2048 => {
            let key = RsaKeyPair::from_pkcs8(&pkcs8).expect("rsa key");
            let mut signature = vec![0u8; key.public_modulus_len()];
            key.sign(&RSA_PKCS1_SHA256, &rng, challenge.body(), &mut signature)
                .expect("rsa signature");
            signature
        }
        TestKeyType::EcdsaP256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8)
            .expect("p256 key")
            .sign(&rng, challenge.body())
            .expect("ecdsa signature")
            .as_ref()
            .to_vec(),
        other => panic!("no MCA user of key type {other:?} in this benchmark"),
    };
    McaUser {
        name,
        cert,
        challenge,
        signature,
    }
}

/// The user certificate's signature over the challenge, as `vpn_core::mca` checks it,
/// alone and within the whole auth-reply check (`verify_reply`: challenge lookup,
/// machine certificate, PKCS#7 bag, signature).
fn mca_signature(c: &mut Criterion) {
    let ca = TestCa::root("bench-user-ca").expect("user CA");
    let machine = ca
        .issue(&LeafOptions::client("machine-1"))
        .expect("machine");
    let users = [
        mca_user(&ca, "rsa2048", TestKeyType::Rsa2048),
        mca_user(&ca, "p256", TestKeyType::EcdsaP256),
    ];
    let mut group = c.benchmark_group("mca_signature");
    for user in &users {
        group.bench_function(BenchmarkId::new("verify_signature", user.name), |b| {
            b.iter(|| {
                verify_signature(
                    black_box(user.challenge.body()),
                    black_box(&user.cert.cert_der),
                    McaHash::Sha256,
                    black_box(&user.signature),
                )
                .expect("signature verifies")
            });
        });
        let bag = STANDARD.encode(certificate_bag(&[&user.cert.cert_der]));
        let body = reply_body(user.challenge.handle(), &bag, &user.signature);
        let Ok(ClientMessage::AuthReply(reply)) = ClientMessage::parse(&body) else {
            panic!("the benchmark's auth-reply does not parse");
        };
        let mut store = ChallengeStore::new(16);
        let now = start();
        group.bench_function(BenchmarkId::new("verify_reply", user.name), |b| {
            b.iter(|| {
                store
                    .insert(user.challenge.clone(), &machine.cert_der, now)
                    .expect("room for the challenge");
                verify_reply(&mut store, black_box(&reply), Some(&machine.cert_der), now)
                    .expect("reply verifies")
            });
        });
    }
    group.finish();
}

/// A client chain against a trustpoint: leaf → root, and leaf → intermediate → root with
/// the intermediate presented by the client. Baseline: one bare ECDSA P-256 signature
/// verification (the CAs sign with P-256), and building the trust store once.
fn chain_validation(c: &mut Criterion) {
    let root = TestCa::root("bench-root").expect("root");
    let intermediate = root
        .intermediate("bench-intermediate", None)
        .expect("intermediate");
    let direct_leaf = root.issue(&LeafOptions::client("jdoe")).expect("leaf");
    let deep_leaf = intermediate
        .issue(&LeafOptions::client("jdoe"))
        .expect("leaf");
    let trustpoint = Trustpoint {
        name: "bench-user-ca".to_owned(),
        ca_certificates_pem: root.cert.cert_pem.clone(),
        validation_usage: ValidationUsage::default(),
        skip_ca_flag_check: false,
        require_client_auth_eku: true,
        revocation: Revocation::None,
    };
    let store = TrustStore::new(&[&trustpoint]).expect("trust store");
    let p256_user = mca_user(&root, "p256", TestKeyType::EcdsaP256);

    let mut group = c.benchmark_group("chain_validation");
    group.bench_function("one_p256_signature_baseline", |b| {
        b.iter(|| {
            verify_signature(
                black_box(p256_user.challenge.body()),
                black_box(&p256_user.cert.cert_der),
                McaHash::Sha256,
                black_box(&p256_user.signature),
            )
            .expect("signature verifies")
        });
    });
    group.bench_function("build_trust_store", |b| {
        b.iter(|| TrustStore::new(&[black_box(&trustpoint)]).expect("trust store"));
    });
    let direct = [CertificateDer::from(direct_leaf.cert_der)];
    group.bench_function("leaf_root", |b| {
        b.iter(|| {
            store
                .validate(black_box(&direct), TEST_NOW)
                .expect("valid chain")
        });
    });
    let deep = [
        CertificateDer::from(deep_leaf.cert_der),
        CertificateDer::from(intermediate.cert.cert_der),
    ];
    group.bench_function("leaf_intermediate_root", |b| {
        b.iter(|| {
            store
                .validate(black_box(&deep), TEST_NOW)
                .expect("valid chain")
        });
    });
    group.finish();
}

/// The init openconnect 9.01 sends with `--mca-certificate` (protocol.md §8.1).
const OPENCONNECT_INIT: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<config-auth client=\"vpn\" type=\"init\" aggregate-auth-version=\"2\"><version who=\"vpn\">v9.01-3</version><device-id>linux-64</device-id><capabilities><auth-method>single-sign-on-v2</auth-method><auth-method>single-sign-on-external-browser</auth-method><auth-method>multiple-cert</auth-method></capabilities><group-access>https://localhost:8443/RAVPN-MultiCert</group-access></config-auth>\n";

/// The client's init, and its MCA auth-reply carrying an RSA-2048 user certificate in a
/// PKCS#7 bag and the signature (64-column base64, as openconnect sends them).
fn aggauth_parsing(c: &mut Criterion) {
    let ca = TestCa::root("bench-user-ca").expect("user CA");
    let user = mca_user(&ca, "rsa2048", TestKeyType::Rsa2048);
    let bag = STANDARD.encode(certificate_bag(&[&user.cert.cert_der]));
    let reply = reply_body(user.challenge.handle(), &bag, &user.signature);

    let mut group = c.benchmark_group("aggauth_parsing");
    group.throughput(Throughput::Bytes(OPENCONNECT_INIT.len() as u64));
    group.bench_function("init", |b| {
        b.iter(
            || match ClientMessage::parse(black_box(OPENCONNECT_INIT.as_bytes())) {
                Ok(ClientMessage::Init(init)) => init,
                other => panic!("not an init: {other:?}"),
            },
        );
    });
    group.throughput(Throughput::Bytes(reply.len() as u64));
    group.bench_function("mca_auth_reply", |b| {
        b.iter(|| match ClientMessage::parse(black_box(&reply)) {
            Ok(ClientMessage::AuthReply(reply)) => reply,
            other => panic!("not an auth-reply: {other:?}"),
        });
    });
    group.finish();
}

/// An IPv4 packet of `size` bytes (the version nibble is all the codec looks at).
fn ip_packet(size: usize) -> Vec<u8> {
    let mut packet: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    packet[0] = 0x45;
    packet
}

/// The DER inside a PEM block.
fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    STANDARD.decode(body).expect("PEM body is base64")
}

/// A PKCS#7 certificate bag as openconnect sends the user certificate: SignedData with
/// no signers and inner content type `data`.
fn certificate_bag(certificates: &[&[u8]]) -> Vec<u8> {
    const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
    const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
    let choices: Vec<CertificateChoices> = certificates
        .iter()
        .map(|der| CertificateChoices::Certificate(Certificate::from_der(der).expect("x509")))
        .collect();
    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(
            SetOfVec::try_from(choices).expect("distinct certificates"),
        )),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    ContentInfo {
        content_type: SIGNED_DATA,
        content: Any::encode_from(&signed_data).expect("signed data"),
    }
    .to_der()
    .expect("content info")
}

/// Base64 in 64-column lines, as openconnect writes it.
fn wrap64(text: &str) -> String {
    text.as_bytes()
        .chunks(64)
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// An MCA auth-reply shaped like openconnect 9.01's (protocol.md §2.5, §8.1).
fn reply_body(handle: &str, bag_base64: &str, signature: &[u8]) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<config-auth client=\"vpn\" type=\"auth-reply\" \
         aggregate-auth-version=\"2\"><version who=\"vpn\">v9.01-3</version><device-id>linux-64</device-id>\
         <capabilities><auth-method>single-sign-on-v2</auth-method><auth-method>single-sign-on-external-browser</auth-method>\
         <auth-method>multiple-cert</auth-method></capabilities><session-token/><session-id/><opaque is-for=\"sg\">\n\
         <tunnel-group>RAVPN-MultiCert</tunnel-group>\n<aggauth-handle>{handle}</aggauth-handle>\n\
         <auth-method>multiple-cert</auth-method>\n<config-hash>1700000000000</config-hash>\n</opaque><auth>\
         <client-cert-chain cert-store=\"1M\"><client-cert-sent-via-protocol/></client-cert-chain>\
         <client-cert-chain cert-store=\"1U\"><client-cert cert-format=\"pkcs7\">{}</client-cert>\
         <client-cert-auth-signature hash-algorithm-chosen=\"sha256\">{}</client-cert-auth-signature>\
         </client-cert-chain></auth></config-auth>\n",
        wrap64(bag_base64),
        wrap64(&STANDARD.encode(signature)),
    )
    .into_bytes()
}

/// `vpn-core` takes time as a parameter; the benchmark needs one real instant.
#[allow(clippy::disallowed_methods)]
fn start() -> Instant {
    Instant::now()
}
