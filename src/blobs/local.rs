//! Blobs as files under the data directory: `blobs/ab/cd/abcd…` (two levels
//! of fan-out keep folders small). A blob appears atomically: it is linked
//! (or copied) to a temporary name beside its final one, then renamed.

use std::io;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use tokio_util::io::ReaderStream;

use super::{BlobError, BlobKey, BlobStream, Blobs};
use crate::adapter::BoxFuture;

pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    pub fn new(root: impl Into<PathBuf>) -> LocalBlobs {
        LocalBlobs { root: root.into() }
    }

    fn path_of(&self, key: &BlobKey) -> PathBuf {
        let k = key.as_str();
        self.root.join(&k[0..2]).join(&k[2..4]).join(k)
    }

    async fn put_file(&self, key: &BlobKey, spooled: &Path) -> io::Result<()> {
        let target = self.path_of(key);
        if tokio::fs::try_exists(&target).await? {
            return Ok(());
        }
        let dir = target.parent().expect("a blob path has a folder");
        tokio::fs::create_dir_all(dir).await?;
        let temp = dir.join(format!(
            ".{}.{}",
            key.as_str(),
            crate::auth::random_token(8)
        ));
        // Same file system (the spool lives under the data directory): a hard
        // link costs nothing. Elsewhere, copy.
        if tokio::fs::hard_link(spooled, &temp).await.is_err() {
            tokio::fs::copy(spooled, &temp).await?;
        }
        let renamed = tokio::fs::rename(&temp, &target).await;
        // Also after success: renaming a link onto another link of the same
        // file (two uploads of it at once) succeeds and leaves both names.
        match tokio::fs::remove_file(&temp).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(error = %e, path = %temp.display(), "could not remove a temporary blob link")
            }
        }
        renamed
    }
}

impl Blobs for LocalBlobs {
    fn put<'a>(
        &'a self,
        key: &'a BlobKey,
        spooled: &'a Path,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move { Ok(self.put_file(key, spooled).await?) })
    }

    fn get<'a>(&'a self, key: &'a BlobKey) -> BoxFuture<'a, Result<Option<BlobStream>, BlobError>> {
        Box::pin(async move {
            match tokio::fs::File::open(self.path_of(key)).await {
                Ok(file) => Ok(Some(ReaderStream::with_capacity(file, 64 * 1024).boxed())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn exists<'a>(&'a self, key: &'a BlobKey) -> BoxFuture<'a, Result<bool, BlobError>> {
        Box::pin(async move { Ok(tokio::fs::try_exists(self.path_of(key)).await?) })
    }

    fn delete<'a>(&'a self, key: &'a BlobKey) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path_of(key)).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn name(&self) -> &'static str {
        "local"
    }
}
