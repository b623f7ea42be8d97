//! Data directories (one per disk) and how the store recognises them.
//!
//! Each configured directory holds `blobs/segment-*.seg` and an identity
//! file `campusmail-disk.json` naming the store it belongs to and its disk
//! number. The sled tree `disks` remembers every directory the store has
//! used (number -> path, draining). Identity travels with the files, not
//! the mount path, so a disk mounted at a new path is still recognised.
//!
//! Invariants, checked on every open:
//! - a directory from another store is refused (mixing two stores' blobs
//!   would corrupt both);
//! - a directory that still holds segments cannot silently disappear from
//!   appliance.toml: the store refuses to open until it is put back or was
//!   drained (`campusmail store drain DIR`) first;
//! - disk numbers are never reused while segments name them.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::StoreError;

const IDENTITY_FILE: &str = "campusmail-disk.json";
const STORE_ID_KEY: &[u8] = b"store_id";

/// A data directory as appliance.toml lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDirSpec {
    pub path: PathBuf,
    /// Share of new blobs relative to the others (e.g. its size in TB).
    pub weight: u32,
}

/// A registered data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disk {
    pub id: u16,
    pub path: PathBuf,
    pub weight: u32,
    pub draining: bool,
}

impl Disk {
    pub fn blobs_dir(&self) -> PathBuf {
        self.path.join("blobs")
    }
}

#[derive(Serialize, Deserialize)]
struct IdentityFile {
    store: String,
    disk: u16,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DiskRecord {
    pub path: PathBuf,
    pub draining: bool,
}

fn decode_record(v: &[u8]) -> Result<DiskRecord, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt(format!("disk record: {e}")))
}

pub fn encode_record(r: &DiskRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(r).map_err(|e| StoreError::Corrupt(format!("disk record: {e}")))
}

/// This store's random identity, made on first open.
fn store_id(meta: &sled::Tree) -> Result<String, StoreError> {
    if let Some(v) = meta.get(STORE_ID_KEY)? {
        return String::from_utf8(v.to_vec())
            .map_err(|_| StoreError::Corrupt("store id is not text".into()));
    }
    let id: [u8; 16] = rand::random();
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    meta.insert(STORE_ID_KEY, id.as_bytes())?;
    Ok(id)
}

fn read_identity(dir: &Path) -> Result<Option<IdentityFile>, StoreError> {
    let path = dir.join(IDENTITY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("{} is damaged: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn write_identity(dir: &Path, identity: &IdentityFile) -> Result<(), StoreError> {
    let json = serde_json::to_vec_pretty(identity)
        .map_err(|e| StoreError::Corrupt(format!("identity file: {e}")))?;
    crate::fsutil::write_atomically(&dir.join(IDENTITY_FILE), &json, 0o600)?;
    Ok(())
}

fn create_private_dir(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    Ok(())
}

/// Matches the configured directories with the registered ones.
/// `segments_on(disk)` counts the segments a disk still holds.
pub fn register(
    meta: &sled::Tree,
    disks: &sled::Tree,
    specs: &[DataDirSpec],
    segments_on: impl Fn(u16) -> usize,
) -> Result<Vec<Disk>, StoreError> {
    if specs.is_empty() {
        return Err(StoreError::InvalidName(
            "the store needs at least one data directory".into(),
        ));
    }
    let store = store_id(meta)?;
    let mut known: BTreeMap<u16, DiskRecord> = BTreeMap::new();
    for entry in disks.iter() {
        let (k, v) = entry?;
        let id = <[u8; 2]>::try_from(&k[..])
            .map(u16::from_be_bytes)
            .map_err(|_| StoreError::Corrupt("disk number key".into()))?;
        known.insert(id, decode_record(&v)?);
    }
    let mut out = Vec::new();
    let mut seen_paths = HashSet::new();
    for spec in specs {
        if !seen_paths.insert(spec.path.clone()) {
            return Err(StoreError::InvalidName(format!(
                "data directory {} is listed twice",
                spec.path.display()
            )));
        }
        create_private_dir(&spec.path.join("blobs"))?;
        let id = match read_identity(&spec.path)? {
            Some(identity) if identity.store != store => {
                return Err(StoreError::InvalidName(format!(
                    "data directory {} belongs to another campusmail store; \
                     give this store an empty directory",
                    spec.path.display()
                )))
            }
            Some(identity) => identity.disk,
            None => {
                let earlier = known.iter().find(|(_, r)| r.path == spec.path);
                let id = match earlier {
                    Some((&id, _)) if segments_on(id) > 0 => {
                        return Err(StoreError::Corrupt(format!(
                            "data directory {} lost its {IDENTITY_FILE} but the store \
                             has data there; was the disk replaced or not mounted?",
                            spec.path.display()
                        )))
                    }
                    Some((&id, _)) => id,
                    None => {
                        let max = known.keys().chain(out.iter().map(|d: &Disk| &d.id)).max();
                        max.map_or(Some(1), |m| m.checked_add(1))
                            .ok_or_else(|| StoreError::Corrupt("disk numbers exhausted".into()))?
                    }
                };
                write_identity(
                    &spec.path,
                    &IdentityFile {
                        store: store.clone(),
                        disk: id,
                    },
                )?;
                id
            }
        };
        let record = match known.get(&id) {
            Some(r) => DiskRecord {
                path: spec.path.clone(),
                draining: r.draining,
            },
            None => DiskRecord {
                path: spec.path.clone(),
                draining: false,
            },
        };
        disks.insert(id.to_be_bytes(), encode_record(&record)?)?;
        out.push(Disk {
            id,
            path: spec.path.clone(),
            weight: spec.weight,
            draining: record.draining,
        });
    }
    for (id, record) in &known {
        if out.iter().any(|d| d.id == *id) {
            continue;
        }
        let held = segments_on(*id);
        if held > 0 {
            return Err(StoreError::InvalidName(format!(
                "data directory {} (disk {id}) still holds {held} segment file(s) but is \
                 not in appliance.toml; put it back, run `campusmail store drain {}`, \
                 wait until it is empty, and only then remove it",
                record.path.display(),
                record.path.display()
            )));
        }
        // Fully drained and removed from the configuration: forget it.
        disks.remove(id.to_be_bytes())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(p: &Path, weight: u32) -> DataDirSpec {
        DataDirSpec {
            path: p.to_path_buf(),
            weight,
        }
    }

    #[test]
    fn directories_keep_their_numbers_and_foreign_ones_are_refused() -> Result<(), StoreError> {
        let root = tempfile::tempdir()?;
        let db = sled::Config::new().temporary(true).open()?;
        let (meta, disks) = (db.open_tree("meta")?, db.open_tree("disks")?);
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        let got = register(&meta, &disks, &[spec(&a, 1), spec(&b, 2)], |_| 0)?;
        assert_eq!(got.iter().map(|d| d.id).collect::<Vec<_>>(), vec![1, 2]);
        // Order in the file does not matter: identity files decide.
        let again = register(&meta, &disks, &[spec(&b, 2), spec(&a, 1)], |_| 0)?;
        assert_eq!(again.iter().map(|d| d.id).collect::<Vec<_>>(), vec![2, 1]);
        // Removing a directory with data is refused; without data it is forgotten.
        let err = register(&meta, &disks, &[spec(&a, 1)], |d| usize::from(d == 2));
        assert!(matches!(err, Err(StoreError::InvalidName(m)) if m.contains("store drain")));
        register(&meta, &disks, &[spec(&a, 1)], |_| 0)?;
        assert_eq!(disks.len(), 1);
        // Another store's directory.
        let other = sled::Config::new().temporary(true).open()?;
        let err = register(
            &other.open_tree("meta")?,
            &other.open_tree("disks")?,
            &[spec(&a, 1)],
            |_| 0,
        );
        assert!(matches!(err, Err(StoreError::InvalidName(m)) if m.contains("another")));
        Ok(())
    }
}
