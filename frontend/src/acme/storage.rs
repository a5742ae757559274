//! The ACME state directory (`<server.state_dir>/acme`, mode 0700):
//!
//! ```text
//! accounts/<id>.json              account credentials (its private key), one per directory
//!                                 URL and contact; mode 0600
//! certificates/listener/<name>/     a listener's (`listeners.NAME.acme`), or
//! certificates/site/<name>/         a site's (`sites.NAME.acme`):
//!     certificate.pem             the chain as the CA sent it
//!     key.pem                     its private key; mode 0600
//!     order.json                  the directory and names it was ordered for
//! ```
//!
//! Every file is written to a temporary name and renamed, so a crash never leaves half a key
//! next to a whole certificate. The key files are 0600 and the directories 0700 from the
//! start, and the front end prepares the directories before it drops privileges, giving them
//! (and the state directory itself, when it creates it) to the user it runs as.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use protocol::control::{AcmeSpec, RunAs};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub(crate) enum StorageError {
    #[error("cannot prepare the ACME state directory {path}: {source}")]
    Prepare {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot give the ACME state directory {path} to the unprivileged user: {source}")]
    Chown { path: PathBuf, source: nix::Error },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a stored certificate was ordered for: a change of CA or names means a new order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OrderRecord {
    pub directory: String,
    pub domains: Vec<String>,
}

/// A certificate and key as stored.
#[derive(Debug)]
pub(crate) struct StoredCertificate {
    pub chain_pem: String,
    pub key_pem: String,
    pub record: OrderRecord,
}

/// The files of one listener's ACME state.
#[derive(Debug, Clone)]
pub(crate) struct Storage {
    account: PathBuf,
    certificates: PathBuf,
}

impl Storage {
    /// `name` is `listener/NAME` or `site/NAME`.
    pub(crate) fn new(spec: &AcmeSpec, name: &str) -> Self {
        Storage {
            account: spec
                .state_dir
                .join("accounts")
                .join(format!("{}.json", account_id(spec))),
            certificates: spec.state_dir.join("certificates").join(name),
        }
    }

    /// Creates the directories (0700) and, when the front end will drop privileges, gives the
    /// whole ACME tree to that user so that renewals can write it.
    pub(crate) fn prepare(&self, run_as: Option<&RunAs>) -> Result<(), StorageError> {
        let acme_root = self
            .account
            .parent()
            .and_then(Path::parent)
            .expect("accounts/ has a parent");
        // The directories this call creates above the ACME tree (a new `server.state_dir`):
        // they are paddock's and go to `run_as` too. Existing ones are left as they are, since
        // the state directory may sit in a shared parent.
        let created_above: Vec<PathBuf> = acme_root
            .ancestors()
            .skip(1)
            .take_while(|dir| !dir.exists())
            .map(Path::to_path_buf)
            .collect();
        for dir in [self.account.parent().expect("a parent"), &self.certificates] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| StorageError::Prepare {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
        if let Some(run_as) = run_as {
            for dir in &created_above {
                chown(dir, run_as)?;
            }
            chown_tree(acme_root, run_as)?;
        }
        Ok(())
    }

    pub(crate) fn account(&self) -> Option<String> {
        fs::read_to_string(&self.account).ok()
    }

    /// Removes the stored account (the CA no longer knows it), so the next attempt makes one.
    pub(crate) fn forget_account(&self) {
        let _ = fs::remove_file(&self.account);
    }

    pub(crate) fn save_account(&self, json: &str) -> Result<(), StorageError> {
        write_private(&self.account, json.as_bytes())
    }

    /// The stored certificate, if all three files are there and readable.
    pub(crate) fn certificate(&self) -> Option<StoredCertificate> {
        let record = fs::read_to_string(self.certificates.join("order.json")).ok()?;
        Some(StoredCertificate {
            chain_pem: fs::read_to_string(self.certificates.join("certificate.pem")).ok()?,
            key_pem: fs::read_to_string(self.certificates.join("key.pem")).ok()?,
            record: serde_json::from_str(&record).ok()?,
        })
    }

    /// Stores a new certificate: key first, the record last, so a reader that finds the record
    /// of this order finds its key and chain too.
    pub(crate) fn save_certificate(&self, stored: &StoredCertificate) -> Result<(), StorageError> {
        write_private(
            &self.certificates.join("key.pem"),
            stored.key_pem.as_bytes(),
        )?;
        write_private(
            &self.certificates.join("certificate.pem"),
            stored.chain_pem.as_bytes(),
        )?;
        let record = serde_json::to_string_pretty(&stored.record).expect("serializable");
        write_private(&self.certificates.join("order.json"), record.as_bytes())
    }
}

/// A file name for the account of this directory and contact: the host and path of the
/// directory URL made file-safe, and the contact.
fn account_id(spec: &AcmeSpec) -> String {
    let directory = spec
        .directory
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let contact = spec.email.as_deref().unwrap_or("no-contact");
    format!("{directory}_{contact}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@.-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `bytes` to `path` with mode 0600, through a temporary file and a rename.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let temporary = path.with_extension("tmp");
    let error = |source| StorageError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(error)?;
    file.write_all(bytes).map_err(error)?;
    file.sync_all().map_err(error)?;
    fs::rename(&temporary, path).map_err(error)
}

fn chown(path: &Path, run_as: &RunAs) -> Result<(), StorageError> {
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(run_as.uid)),
        Some(nix::unistd::Gid::from_raw(run_as.gid)),
    )
    .map_err(|source| StorageError::Chown {
        path: path.to_path_buf(),
        source,
    })
}

/// Gives `dir` and everything in it to `run_as` (files a root-run paddock wrote earlier).
fn chown_tree(dir: &Path, run_as: &RunAs) -> Result<(), StorageError> {
    chown(dir, run_as)?;
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                chown_tree(&entry.path(), run_as)?;
            } else {
                chown(&entry.path(), run_as)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use protocol::control::AcmeChallenge;

    use super::*;

    fn spec(dir: &Path) -> AcmeSpec {
        AcmeSpec {
            directory: "https://ca.example:14000/dir".into(),
            email: Some("ops@example.org".into()),
            domains: vec!["example.org".into()],
            challenge: AcmeChallenge::TlsAlpn01,
            ca_certificate: None,
            state_dir: dir.join("acme"),
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn keys_are_0600_directories_0700_and_a_certificate_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(&spec(dir.path()), "listener/https");
        storage.prepare(None).unwrap();
        assert!(storage.certificate().is_none());
        storage.save_account("{\"id\":1}").unwrap();
        let record = OrderRecord {
            directory: "https://ca.example:14000/dir".into(),
            domains: vec!["example.org".into()],
        };
        storage
            .save_certificate(&StoredCertificate {
                chain_pem: "CHAIN".into(),
                key_pem: "KEY".into(),
                record: record.clone(),
            })
            .unwrap();
        let acme = dir.path().join("acme");
        assert_eq!(mode(&acme), 0o700);
        assert_eq!(mode(&acme.join("certificates/listener/https")), 0o700);
        assert_eq!(
            mode(&acme.join("certificates/listener/https/key.pem")),
            0o600
        );
        let account = acme.join("accounts/ca.example_14000_dir_ops@example.org.json");
        assert_eq!(mode(&account), 0o600);
        assert_eq!(storage.account().unwrap(), "{\"id\":1}");
        let back = storage.certificate().unwrap();
        assert_eq!(
            (back.chain_pem.as_str(), back.key_pem.as_str()),
            ("CHAIN", "KEY")
        );
        assert_eq!(back.record, record);
    }
}
