//! Blobs: where the bytes of attachments live. Local files under the data
//! directory by default, or an S3-compatible bucket (AWS S3, IBM Cloud
//! Object Storage, MinIO).
//!
//! Blobs are content-addressed: the key is the SHA-256 of the bytes, so the
//! same file sent twice is stored once, and a key never changes meaning.
//! An upload is first spooled to a private temporary file ([`Spool`]) while
//! it is hashed and measured; only a complete upload that passed the checks
//! reaches the store. A refused or interrupted upload leaves nothing behind:
//! the spool file is deleted when it is dropped.

mod local;
mod s3;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

pub use local::LocalBlobs;
pub use s3::{S3Blobs, S3Settings};

use crate::adapter::BoxFuture;
use crate::auth::hex;

/// The bytes of a blob, in chunks.
pub type BlobStream = BoxStream<'static, io::Result<Bytes>>;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the blob store is unavailable: {0}")]
    Unavailable(String),
    #[error("the blob store failed: {0}")]
    Io(#[from] io::Error),
}

/// A blob's key: the lowercase hex SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    /// Accepts only 64 lowercase hex digits, so a key can never name a path
    /// outside the store.
    pub fn parse(s: &str) -> Option<BlobKey> {
        (s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| BlobKey(s.to_string()))
    }

    pub fn of(bytes: &[u8]) -> BlobKey {
        BlobKey(hex(&Sha256::digest(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One adapter of the blob seam. Every method is idempotent.
pub trait Blobs: Send + Sync + 'static {
    /// Stores the complete, checked upload at `spooled` under `key`
    /// (a no-op when the key already exists).
    fn put<'a>(
        &'a self,
        key: &'a BlobKey,
        spooled: &'a Path,
    ) -> BoxFuture<'a, Result<(), BlobError>>;

    /// The blob's bytes, or `None` when there is no such blob.
    fn get<'a>(&'a self, key: &'a BlobKey) -> BoxFuture<'a, Result<Option<BlobStream>, BlobError>>;

    /// Whether the blob exists.
    fn exists<'a>(&'a self, key: &'a BlobKey) -> BoxFuture<'a, Result<bool, BlobError>>;

    /// Removes the blob; removing a missing blob is not an error.
    fn delete<'a>(&'a self, key: &'a BlobKey) -> BoxFuture<'a, Result<(), BlobError>>;

    fn name(&self) -> &'static str;
}

/// Why an upload was refused while it streamed in.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the upload could not be written: {0}")]
    Io(#[from] io::Error),
}

/// An upload on its way in: written to a private temporary file, hashed and
/// counted chunk by chunk, refused the moment it passes the size limit.
pub struct Spool {
    file: tokio::fs::File,
    temp: tempfile::TempPath,
    hasher: Sha256,
    size: u64,
    limit: u64,
    /// The first bytes, kept to decide the file's type from its content.
    head: Vec<u8>,
}

/// How many leading bytes [`Spool`] keeps for type detection.
pub const HEAD_BYTES: usize = 512;

impl Spool {
    /// A new spool file in `dir` (created if missing), for at most `limit` bytes.
    pub async fn create(dir: &Path, limit: u64) -> io::Result<Spool> {
        tokio::fs::create_dir_all(dir).await?;
        let dir = dir.to_path_buf();
        let named = tokio::task::spawn_blocking(move || tempfile::NamedTempFile::new_in(dir))
            .await
            .map_err(io::Error::other)??;
        let (std_file, temp) = named.into_parts();
        Ok(Spool {
            file: tokio::fs::File::from_std(std_file),
            temp,
            hasher: Sha256::new(),
            size: 0,
            limit,
            head: Vec::with_capacity(HEAD_BYTES),
        })
    }

    /// Adds a chunk; past the limit the upload is refused (and the file
    /// goes when the spool is dropped).
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), SpoolError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(SpoolError::TooLarge { limit: self.limit });
        }
        if self.head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk).await?;
        Ok(())
    }

    /// Flushes the file and returns what was received.
    pub async fn finish(mut self) -> Result<Spooled, SpoolError> {
        self.file.flush().await?;
        self.file.sync_data().await?;
        Ok(Spooled {
            key: BlobKey(hex(&self.hasher.finalize())),
            size: self.size,
            head: self.head,
            temp: self.temp,
        })
    }
}

/// A complete upload, still in its temporary file (deleted on drop).
pub struct Spooled {
    pub key: BlobKey,
    pub size: u64,
    pub head: Vec<u8>,
    temp: tempfile::TempPath,
}

impl Spooled {
    pub fn path(&self) -> &Path {
        &self.temp
    }
}

/// Where spool files go: a private folder under the data directory, on the
/// same file system as local blobs so that storing one is a rename.
pub fn spool_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("uploads-in-progress")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_64_lowercase_hex_digits_only() {
        let key = BlobKey::of(b"hello");
        assert_eq!(
            key.as_str(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(BlobKey::parse(key.as_str()), Some(key));
        for bad in ["", "../../etc/passwd", &"A".repeat(64), &"0".repeat(63)] {
            assert_eq!(BlobKey::parse(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_spool_past_its_limit_is_refused_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::create(dir.path(), 10).await.unwrap();
        spool.write(b"0123456789").await.unwrap();
        let refused = spool.write(b"x").await;
        assert!(matches!(refused, Err(SpoolError::TooLarge { limit: 10 })));
        drop(spool);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_finished_spool_knows_its_hash_size_and_head() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::create(dir.path(), 1 << 20).await.unwrap();
        spool.write(b"hel").await.unwrap();
        spool.write(b"lo").await.unwrap();
        let spooled = spool.finish().await.unwrap();
        assert_eq!(spooled.key, BlobKey::of(b"hello"));
        assert_eq!(spooled.size, 5);
        assert_eq!(spooled.head, b"hello");
        assert_eq!(std::fs::read(spooled.path()).unwrap(), b"hello");
        let path = spooled.path().to_path_buf();
        drop(spooled);
        assert!(!path.exists());
    }
}
