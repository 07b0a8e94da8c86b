//! One conformance suite for every blob adapter: local files, and S3 through
//! a real local S3 server (moto).

mod support;

use std::sync::Arc;

use careline::blobs::{BlobKey, Blobs, LocalBlobs, S3Blobs};
use futures_util::TryStreamExt;
use support::s3::Moto;

async fn read_all(blobs: &dyn Blobs, key: &BlobKey) -> Option<Vec<u8>> {
    let stream = blobs.get(key).await.expect("get answers")?;
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.expect("the stream reads");
    Some(chunks.concat())
}

fn spooled(dir: &std::path::Path, bytes: &[u8]) -> (BlobKey, std::path::PathBuf) {
    let path = dir.join(format!("upload-{}", bytes.len()));
    std::fs::write(&path, bytes).unwrap();
    (BlobKey::of(bytes), path)
}

async fn conformance(blobs: Arc<dyn Blobs>) {
    let scratch = tempfile::tempdir().unwrap();
    let name = blobs.name();

    // Put, then read back exactly; a large blob comes back in order.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let (key, path) = spooled(scratch.path(), &big);
    assert!(!blobs.exists(&key).await.unwrap(), "{name}: fresh store");
    assert_eq!(
        read_all(&*blobs, &key).await,
        None,
        "{name}: missing is None"
    );
    blobs.put(&key, &path).await.unwrap();
    assert!(blobs.exists(&key).await.unwrap(), "{name}");
    assert_eq!(
        read_all(&*blobs, &key).await.as_deref(),
        Some(&big[..]),
        "{name}"
    );

    // Putting the same content again changes nothing and does not fail, even
    // when the spool file is gone afterwards (the store has its own copy).
    blobs.put(&key, &path).await.unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        read_all(&*blobs, &key).await.as_deref(),
        Some(&big[..]),
        "{name}"
    );

    // Distinct contents are distinct blobs.
    let (small, small_path) = spooled(scratch.path(), b"hello");
    blobs.put(&small, &small_path).await.unwrap();
    assert_eq!(
        read_all(&*blobs, &small).await.as_deref(),
        Some(&b"hello"[..]),
        "{name}"
    );

    // Delete is idempotent and removes only its blob.
    blobs.delete(&small).await.unwrap();
    blobs.delete(&small).await.unwrap();
    assert!(!blobs.exists(&small).await.unwrap(), "{name}");
    assert_eq!(read_all(&*blobs, &small).await, None, "{name}");
    assert!(
        blobs.exists(&key).await.unwrap(),
        "{name}: the other blob stays"
    );

    // Concurrent puts of the same content all succeed with one blob.
    let (same, same_path) = spooled(scratch.path(), b"same bytes from many uploads");
    let puts: Vec<_> = (0..8)
        .map(|_| {
            let blobs = blobs.clone();
            let (same, same_path) = (same.clone(), same_path.clone());
            tokio::spawn(async move { blobs.put(&same, &same_path).await })
        })
        .collect();
    for put in puts {
        put.await.unwrap().unwrap();
    }
    assert_eq!(
        read_all(&*blobs, &same).await.as_deref(),
        Some(&b"same bytes from many uploads"[..]),
        "{name}"
    );
}

#[tokio::test]
async fn local_files_pass_the_blob_suite() {
    let root = tempfile::tempdir().unwrap();
    conformance(Arc::new(LocalBlobs::new(root.path().join("blobs")))).await;
    // Nothing is left half-written beside the blobs.
    let stray: Vec<_> = walk(&root.path().join("blobs"))
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "temporary files left: {stray:?}");
}

#[tokio::test]
async fn s3_passes_the_blob_suite() {
    let Some(moto) = Moto::start("s3_passes_the_blob_suite").await else {
        return;
    };
    conformance(Arc::new(S3Blobs::new(&moto.settings()).unwrap())).await;
    let keys = moto.keys().await;
    assert!(
        keys.iter().all(|k| k.starts_with("test/blobs/")),
        "{keys:?}"
    );
    assert_eq!(keys.len(), 2, "{keys:?}");
}

#[tokio::test]
async fn an_unreachable_bucket_is_an_error_not_a_missing_blob() {
    let dead = support::s3::unreachable_settings();
    let blobs = S3Blobs::new(&dead).unwrap();
    let key = BlobKey::of(b"x");
    assert!(blobs.get(&key).await.is_err());
    assert!(blobs.exists(&key).await.is_err());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}
