//! Apache password files (`htpasswd`): one `user:hash` a line. paddock verifies the hashes that
//! `htpasswd` writes: bcrypt (`$2y$`, its `-B`), apr1-md5 (`$apr1$`, its default) and `{SHA}`
//! (its `-s`). Entries in other formats (traditional crypt, plain text) never match, and
//! [`Htpasswd::unsupported`] names them so that the front end can say why a login fails.
//!
//! apr1 is MD5-crypt with its own magic string; no maintained crate implements it (the one that
//! does pulls in the unmaintained `rust-crypto`), so it is written here on RustCrypto's `md-5`,
//! checked against hashes from `openssl passwd -apr1`.

use std::collections::HashMap;

use base64::Engine;
use md5::{Digest, Md5};
use sha1::Sha1;

#[derive(Debug, Clone, Default)]
pub struct Htpasswd {
    users: HashMap<String, String>,
    unsupported: Vec<String>,
}

impl Htpasswd {
    /// Parses a file's content. Blank lines and `#` comments are skipped.
    pub fn parse(content: &str) -> Self {
        let mut file = Self::default();
        for line in content.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                continue;
            };
            if !is_supported(hash) {
                file.unsupported.push(user.to_string());
            }
            file.users.insert(user.to_string(), hash.to_string());
        }
        file
    }

    /// Whether `user` is in the file with this password.
    pub fn check(&self, user: &str, password: &str) -> bool {
        self.users
            .get(user)
            .is_some_and(|hash| verify(hash, password))
    }

    /// Users whose entries are in a format paddock cannot verify.
    pub fn unsupported(&self) -> &[String] {
        &self.unsupported
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

fn is_supported(hash: &str) -> bool {
    ["$2y$", "$2a$", "$2b$", "$apr1$", "{SHA}"]
        .iter()
        .any(|prefix| hash.starts_with(prefix))
}

fn verify(hash: &str, password: &str) -> bool {
    if hash.starts_with("$2") {
        return bcrypt::verify(password, hash).unwrap_or(false);
    }
    if let Some(rest) = hash.strip_prefix("$apr1$") {
        let Some((salt, _)) = rest.split_once('$') else {
            return false;
        };
        return constant_time_eq(apr1(password, salt).as_bytes(), hash.as_bytes());
    }
    if let Some(expected) = hash.strip_prefix("{SHA}") {
        let digest = Sha1::digest(password.as_bytes());
        let encoded = base64::engine::general_purpose::STANDARD.encode(digest);
        return constant_time_eq(encoded.as_bytes(), expected.as_bytes());
    }
    false
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `$apr1$salt$hash` for `password` (MD5-crypt, 1000 rounds; the salt is cut at 8 characters).
pub fn apr1(password: &str, salt: &str) -> String {
    const MAGIC: &[u8] = b"$apr1$";
    let pw = password.as_bytes();
    let salt = &salt.as_bytes()[..salt.len().min(8)];

    let mut alternate = Md5::new();
    alternate.update(pw);
    alternate.update(salt);
    alternate.update(pw);
    let alternate = alternate.finalize();

    let mut ctx = Md5::new();
    ctx.update(pw);
    ctx.update(MAGIC);
    ctx.update(salt);
    for chunk in (0..pw.len()).step_by(16) {
        ctx.update(&alternate[..(pw.len() - chunk).min(16)]);
    }
    let mut bits = pw.len();
    while bits > 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&pw[..1]);
        }
        bits >>= 1;
    }
    let mut digest = ctx.finalize();

    for round in 0..1000 {
        let mut ctx = Md5::new();
        if round & 1 == 1 {
            ctx.update(pw);
        } else {
            ctx.update(digest);
        }
        if round % 3 != 0 {
            ctx.update(salt);
        }
        if round % 7 != 0 {
            ctx.update(pw);
        }
        if round & 1 == 1 {
            ctx.update(digest);
        } else {
            ctx.update(pw);
        }
        digest = ctx.finalize();
    }

    let mut out = String::from("$apr1$");
    out.push_str(std::str::from_utf8(salt).unwrap_or_default());
    out.push('$');
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        let value =
            (u32::from(digest[a]) << 16) | (u32::from(digest[b]) << 8) | u32::from(digest[c]);
        push_base64_crypt(&mut out, value, 4);
    }
    push_base64_crypt(&mut out, u32::from(digest[11]), 2);
    out
}

/// crypt(3)'s own base-64 alphabet, least significant 6 bits first.
fn push_base64_crypt(out: &mut String, mut value: u32, chars: usize) {
    const ALPHABET: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for _ in 0..chars {
        out.push(char::from(ALPHABET[(value & 0x3f) as usize]));
        value >>= 6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apr1_matches_openssl() {
        // `openssl passwd -apr1 -salt RandSalt password`
        assert_eq!(
            apr1("password", "RandSalt"),
            "$apr1$RandSalt$PgCXHRrkpSt4cbyC2C6bm/"
        );
        let file = Htpasswd::parse("user:$apr1$lZL6V/ci$eIMz/iKDkbtys/uU7LEK00\n");
        assert!(file.check("user", "password"));
        assert!(!file.check("user", "Password"));
        assert!(!file.check("other", "password"));
    }

    #[test]
    fn sha_bcrypt_and_unsupported_entries() {
        let bcrypt_hash = bcrypt::hash("s3cret", 4).unwrap();
        let file = Htpasswd::parse(&format!(
            "# comment\nsha:{{SHA}}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\nbc:{bcrypt_hash}\nold:abJnggxhB/yWI\n"
        ));
        assert!(file.check("sha", "password"));
        assert!(!file.check("sha", "wrong"));
        assert!(file.check("bc", "s3cret"));
        assert!(!file.check("bc", "nope"));
        assert!(!file.check("old", "password"));
        assert_eq!(file.unsupported(), ["old"]);
        assert_eq!(file.len(), 3);
    }
}
