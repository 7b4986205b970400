//! S3 Inventory: Put/Get/List/DeleteBucketInventoryConfiguration with AWS's XML and
//! errors (`config.rs`), kept as one bucket attribute; the reports they ask for, CSV
//! (gzip) or Parquet files and a manifest written into the destination bucket from a
//! paged scan of the source (`report.rs`, `files.rs`, `fields.rs`); the task that makes
//! them Daily or Weekly (`schedule.rs`); and [`run_now`] for `cybs3 admin inventory run`.

mod config;
mod fields;
pub(crate) mod files;
pub(crate) mod report;
mod schedule;

pub use report::{InventoryError, InventoryRun};
pub(crate) use schedule::run;

use crate::ctx::{blocking, Cybs3};
use config::{bad_destination, Inventory, MAX_CONFIGS};
use engine::Store;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Result};

/// The bucket attribute holding the configurations (JSON, sorted by id).
const ATTR: &str = "inventory";
/// Configurations per ListBucketInventoryConfigurations page, as AWS pages them.
const LIST_PAGE: usize = 100;

/// Puts and deletes read, change and write the one attribute: one at a time, so that
/// two racing puts of different ids both stay.
static WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A bucket's configurations (none when it has none).
fn load(store: &Store, bucket: &str) -> Result<Vec<Inventory>, InventoryError> {
    match store.bucket_attr(bucket, ATTR)? {
        Some(bytes) => {
            serde_json::from_slice(&bytes).map_err(|_| InventoryError::Stored(bucket.to_string()))
        }
        None => Ok(Vec::new()),
    }
}

fn save(store: &Store, bucket: &str, all: &[Inventory]) -> engine::Result<()> {
    let value =
        (!all.is_empty()).then(|| serde_json::to_vec(all).expect("configurations serialize"));
    store.set_bucket_attr(bucket, ATTR, value)
}

async fn load_async(s: &Cybs3, bucket: &str) -> S3Result<Vec<Inventory>> {
    let (store, bucket) = (s.store.clone(), bucket.to_string());
    let loaded = crate::ctx::spawn(move || load(&store, &bucket)).await?;
    loaded.map_err(|e| match e {
        InventoryError::Engine(e) => crate::errors::from_engine(e),
        e => {
            tracing::error!("{e}");
            crate::errors::internal("We encountered an internal error. Please try again.")
        }
    })
}

fn no_such_configuration() -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::Custom("NoSuchConfiguration".into()),
        "The specified configuration does not exist.",
    );
    e.set_status_code(hyper::StatusCode::NOT_FOUND);
    e
}

pub(crate) async fn put(
    s: &Cybs3,
    input: PutBucketInventoryConfigurationInput,
) -> S3Result<PutBucketInventoryConfigurationOutput> {
    let inv = config::check(&input.id, input.inventory_configuration)?;
    let (store, dest) = (s.store.clone(), inv.destination.bucket.clone());
    let exists = blocking(move || match store.bucket(&dest) {
        Ok(_) => Ok(true),
        Err(engine::Error::NoSuchBucket(_)) => Ok(false),
        Err(e) => Err(e),
    })
    .await?;
    if !exists {
        return Err(bad_destination("The destination bucket does not exist"));
    }
    let _one_at_a_time = WRITES.lock().await;
    let mut all = load_async(s, &input.bucket).await?;
    match all.iter().position(|c| c.id == inv.id) {
        Some(i) => all[i] = inv,
        None if all.len() >= MAX_CONFIGS => {
            let mut e = S3Error::with_message(
                S3ErrorCode::Custom("TooManyConfigurations".into()),
                format!("A bucket has at most {MAX_CONFIGS} inventory configurations"),
            );
            e.set_status_code(hyper::StatusCode::BAD_REQUEST);
            return Err(e);
        }
        None => {
            all.push(inv);
            all.sort_by(|a, b| a.id.cmp(&b.id));
        }
    }
    let store = s.store.clone();
    blocking(move || save(&store, &input.bucket, &all)).await?;
    Ok(PutBucketInventoryConfigurationOutput::default())
}

pub(crate) async fn get(
    s: &Cybs3,
    input: GetBucketInventoryConfigurationInput,
) -> S3Result<GetBucketInventoryConfigurationOutput> {
    let all = load_async(s, &input.bucket).await?;
    let Some(inv) = all.iter().find(|c| c.id == input.id) else {
        return Err(no_such_configuration());
    };
    Ok(GetBucketInventoryConfigurationOutput {
        inventory_configuration: Some(inv.to_dto()),
    })
}

pub(crate) async fn list(
    s: &Cybs3,
    input: ListBucketInventoryConfigurationsInput,
) -> S3Result<ListBucketInventoryConfigurationsOutput> {
    let all = load_async(s, &input.bucket).await?;
    let after = match &input.continuation_token {
        Some(t) => Some(crate::list::decode_token(t)?),
        None => None,
    };
    let rest: Vec<&Inventory> = all
        .iter()
        .filter(|c| after.as_ref().is_none_or(|a| c.id > *a))
        .collect();
    let page = &rest[..rest.len().min(LIST_PAGE)];
    let truncated = rest.len() > page.len();
    Ok(ListBucketInventoryConfigurationsOutput {
        continuation_token: input.continuation_token,
        inventory_configuration_list: (!page.is_empty())
            .then(|| page.iter().map(|c| c.to_dto()).collect()),
        is_truncated: Some(truncated),
        next_continuation_token: page
            .last()
            .filter(|_| truncated)
            .map(|c| crate::list::encode_token(&c.id)),
    })
}

pub(crate) async fn delete(
    s: &Cybs3,
    input: DeleteBucketInventoryConfigurationInput,
) -> S3Result<DeleteBucketInventoryConfigurationOutput> {
    let _one_at_a_time = WRITES.lock().await;
    let mut all = load_async(s, &input.bucket).await?;
    let before = all.len();
    all.retain(|c| c.id != input.id);
    if all.len() == before {
        return Err(no_such_configuration());
    }
    let store = s.store.clone();
    blocking(move || save(&store, &input.bucket, &all)).await?;
    Ok(DeleteBucketInventoryConfigurationOutput::default())
}

/// Make configuration `id` of `bucket`'s report now (`cybs3 admin inventory run`),
/// whether or not it is enabled; the schedule is left as it was.
pub fn run_now(store: &Store, bucket: &str, id: &str) -> Result<InventoryRun, InventoryError> {
    let Some(inv) = load(store, bucket)?.into_iter().find(|c| c.id == id) else {
        return Err(InventoryError::NoSuchConfiguration {
            bucket: bucket.to_string(),
            id: id.to_string(),
        });
    };
    report::run(store, bucket, &inv, crate::ctx::now_ns(), report::FILE_ROWS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn configurations_are_put_listed_and_deleted_as_aws_does() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = engine::StoreConfig::new(vec![dir.path().join("d0")]);
        cfg.background = false;
        let store = Store::open(cfg).unwrap();
        store.create_bucket("src").unwrap();
        let s = Cybs3::for_tests(store.clone());
        let cfg = |id: &str| {
            let mut c = config::tests::sample(id);
            c.destination.s3_bucket_destination.bucket = "arn:aws:s3:::dest".into();
            c
        };
        let put_one = |id: &str| PutBucketInventoryConfigurationInput {
            bucket: "src".into(),
            expected_bucket_owner: None,
            id: id.into(),
            inventory_configuration: cfg(id),
        };
        let code = |e: S3Error| e.code().as_str().to_string();
        let e = put(&s, put_one("a")).await.unwrap_err();
        assert_eq!(code(e), "InvalidS3DestinationBucket");
        store.create_bucket("dest").unwrap();
        for i in 0..LIST_PAGE + 1 {
            put(&s, put_one(&format!("id{i:03}"))).await.unwrap();
        }
        let listed = list(
            &s,
            ListBucketInventoryConfigurationsInput {
                bucket: "src".into(),
                continuation_token: None,
                expected_bucket_owner: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(
            listed.inventory_configuration_list.unwrap().len(),
            LIST_PAGE
        );
        assert_eq!(listed.is_truncated, Some(true));
        let next = list(
            &s,
            ListBucketInventoryConfigurationsInput {
                bucket: "src".into(),
                continuation_token: listed.next_continuation_token,
                expected_bucket_owner: None,
            },
        )
        .await
        .unwrap();
        let rest = next.inventory_configuration_list.unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].id, format!("id{LIST_PAGE:03}"));
        let del = |id: &str| DeleteBucketInventoryConfigurationInput {
            bucket: "src".into(),
            expected_bucket_owner: None,
            id: id.into(),
        };
        delete(&s, del("id000")).await.unwrap();
        assert_eq!(
            code(delete(&s, del("id000")).await.unwrap_err()),
            "NoSuchConfiguration"
        );
        let got = get(
            &s,
            GetBucketInventoryConfigurationInput {
                bucket: "src".into(),
                expected_bucket_owner: None,
                id: "id001".into(),
            },
        )
        .await
        .unwrap();
        assert_eq!(got.inventory_configuration.unwrap().id, "id001");
    }
}
