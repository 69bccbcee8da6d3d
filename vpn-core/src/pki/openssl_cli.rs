//! Test-only: certificates rcgen refuses to make (SHA-1 signatures, RSA-1024 keys,
//! repeated subject attributes), signed with the openssl CLI in a temp directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::pki::pem;
use crate::pki::testpki::TestCa;

/// Signs a leaf with the openssl CLI (what rcgen refuses to make: SHA-1, RSA-1024).
pub(crate) fn sign_leaf(
    ca: &TestCa,
    tag: &str,
    new_key: &str,
    digest: &str,
    subject: &str,
) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("vpn-core-pki-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str| -> PathBuf { dir.join(name) };
    std::fs::write(file("ca.pem"), &ca.cert.cert_pem).unwrap();
    std::fs::write(file("ca.key"), ca.key_pem()).unwrap();
    std::fs::write(
        file("ext.cnf"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    let path = |p: PathBuf| p.to_string_lossy().into_owned();
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            new_key,
            "-nodes",
            "-subj",
            subject,
            "-keyout",
            &path(file("leaf.key")),
            "-out",
            &path(file("leaf.csr")),
        ],
    );
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            &path(file("leaf.csr")),
            "-CA",
            &path(file("ca.pem")),
            "-CAkey",
            &path(file("ca.key")),
            "-set_serial",
            "0x4242",
            "-days",
            "30",
            digest,
            "-extfile",
            &path(file("ext.cnf")),
            "-out",
            &path(file("leaf.pem")),
        ],
    );
    let pem_text = std::fs::read_to_string(file("leaf.pem")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    pem::certificates(&pem_text)
        .unwrap()
        .remove(0)
        .as_ref()
        .to_vec()
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("/usr/bin/openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI (/usr/bin/openssl) is required for the weak-certificate tests");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
