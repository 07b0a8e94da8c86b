//! Blobs in an S3-compatible bucket (AWS S3, IBM Cloud Object Storage,
//! MinIO), through `object_store`. Keys are `<prefix>blobs/<sha256>`.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStoreExt, PutPayload, RetryConfig};

use super::{BlobError, BlobKey, BlobStream, Blobs};
use crate::adapter::BoxFuture;

/// Where the bucket is and how to sign requests to it.
#[derive(Clone)]
pub struct S3Settings {
    /// `https://s3.eu-de.cloud-object-storage.appdomain.cloud`, `http://minio:9000`…
    /// Empty means AWS itself, by region.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Prepended to every key (`careline/`), to share a bucket.
    pub prefix: String,
}

impl std::fmt::Debug for S3Settings {
    // The secret access key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("prefix", &self.prefix)
            .finish()
    }
}

pub struct S3Blobs {
    store: AmazonS3,
    prefix: String,
}

impl S3Blobs {
    pub fn new(settings: &S3Settings) -> Result<S3Blobs, BlobError> {
        // object_store builds its reqwest client on our rustls stack, which
        // needs the process's crypto provider.
        crate::adapter::install_tls();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(&settings.secret_access_key)
            // A person is waiting on an upload or a download: a few quick
            // retries, then a clear error (object_store's default is minutes).
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 2,
                retry_timeout: Duration::from_secs(10),
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(60)),
            );
        if !settings.endpoint.is_empty() {
            builder = builder
                .with_endpoint(&settings.endpoint)
                .with_allow_http(settings.endpoint.starts_with("http://"));
        }
        let store = builder
            .build()
            .map_err(|e| BlobError::Unavailable(e.to_string()))?;
        Ok(S3Blobs {
            store,
            prefix: settings.prefix.clone(),
        })
    }

    fn path_of(&self, key: &BlobKey) -> ObjectPath {
        ObjectPath::from(format!("{}blobs/{}", self.prefix, key.as_str()))
    }
}

fn unavailable(e: object_store::Error) -> BlobError {
    BlobError::Unavailable(e.to_string())
}

impl Blobs for S3Blobs {
    fn put<'a>(
        &'a self,
        key: &'a BlobKey,
        spooled: &'a Path,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            let path = self.path_of(key);
            match self.store.head(&path).await {
                Ok(_) => return Ok(()),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(unavailable(e)),
            }
            // Uploads are bounded (`attachment_max_bytes`), so one PUT of
            // the whole file is simpler and cheaper than a multipart upload.
            let bytes = tokio::fs::read(spooled).await?;
            self.store
                .put(&path, PutPayload::from(bytes))
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }

    fn get<'a>(&'a self, key: &'a BlobKey) -> BoxFuture<'a, Result<Option<BlobStream>, BlobError>> {
        Box::pin(async move {
            match self.store.get(&self.path_of(key)).await {
                Ok(result) => Ok(Some(
                    result
                        .into_stream()
                        .map(|chunk| chunk.map_err(std::io::Error::other))
                        .boxed(),
                )),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(unavailable(e)),
            }
        })
    }

    fn exists<'a>(&'a self, key: &'a BlobKey) -> BoxFuture<'a, Result<bool, BlobError>> {
        Box::pin(async move {
            match self.store.head(&self.path_of(key)).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(unavailable(e)),
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a BlobKey) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            match self.store.delete(&self.path_of(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(unavailable(e)),
            }
        })
    }

    fn name(&self) -> &'static str {
        "s3"
    }
}
