//! Feed imports run off the request path: the admin's "import by URL"
//! stores a row and returns at once; a background task fetches, parses and
//! saves the feed, writing its progress and result to that row, which the
//! import's page shows. (The row, not the task, is what the page reads, so
//! any web process can show it.)

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::db::Db;
use crate::db::feed_imports;
use crate::digest::fetch::Fetcher;
use crate::digest::import::{self, FeedRules, PlainTextDetails, Saver};
use crate::domain::FeedImportStatus;

/// Imports running at once in one process; later ones wait, queued.
const CONCURRENT_IMPORTS: usize = 2;

/// Entries saved between two progress writes.
const PROGRESS_EVERY: usize = 100;

/// Starts feed imports in the background.
#[derive(Clone)]
pub struct ImportJobs {
    db: Db,
    fetcher: Fetcher,
    rules: FeedRules,
    permits: Arc<Semaphore>,
}

impl ImportJobs {
    pub fn new(db: Db, fetcher: Fetcher, rules: FeedRules) -> Self {
        Self {
            db,
            fetcher,
            rules,
            permits: Arc::new(Semaphore::new(CONCURRENT_IMPORTS)),
        }
    }

    /// Records an import of `url` and starts it; returns its id at once.
    pub async fn start(&self, url: &url::Url, requested_by: &str) -> Result<Uuid, sqlx::Error> {
        let id = feed_imports::create(&self.db, url.as_str(), requested_by, Utc::now()).await?;
        let jobs = self.clone();
        let url = url.to_string();
        tokio::spawn(async move {
            if let Err(e) = jobs.run(id, &url).await {
                tracing::error!(import = %id, error = %e, "a feed import could not record its progress");
            }
        });
        Ok(id)
    }

    async fn run(&self, id: Uuid, url: &str) -> Result<(), sqlx::Error> {
        let db = &self.db;
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        feed_imports::set_status(db, id, FeedImportStatus::Fetching, Utc::now()).await?;
        let loaded = match import::load(url, &self.fetcher).await {
            Ok(loaded) => loaded,
            Err(why) => return feed_imports::fail(db, id, &why.to_string(), Utc::now()).await,
        };
        feed_imports::set_status(db, id, FeedImportStatus::Parsing, Utc::now()).await?;
        let details = PlainTextDetails::default();
        let feed = loaded.feed.clone();
        let parsed = match import::parse(url, loaded, &details, self.rules).await {
            Ok(parsed) => parsed,
            Err(why) => return feed_imports::fail(db, id, &why.to_string(), Utc::now()).await,
        };
        let parsed = match import::as_its_source_declares(db, parsed, &feed).await {
            Ok(parsed) => parsed,
            Err(why) => return feed_imports::fail(db, id, &why.to_string(), Utc::now()).await,
        };
        feed_imports::set_status(db, id, FeedImportStatus::Saving, Utc::now()).await?;
        let total = parsed.entries.len();
        feed_imports::progress(db, id, 0, total, Utc::now()).await?;
        // Each part is saved in its own transaction, and its progress
        // written once it is.
        let mut saver = Saver::new(db, Utc::now(), parsed.warnings);
        let mut entries = parsed.entries.into_iter();
        let mut done = 0;
        let saved = loop {
            let part: Vec<_> = entries.by_ref().take(PROGRESS_EVERY).collect();
            if part.is_empty() {
                break Ok(saver.report());
            }
            done += part.len();
            if let Err(why) = saver.save(part).await {
                break Err(why);
            }
            feed_imports::progress(db, id, done, total, Utc::now()).await?;
        };
        match saved {
            Ok(report) => {
                tracing::info!(import = %id, feed = %url, added = report.added, "feed imported");
                feed_imports::finish(db, id, &report, Utc::now()).await
            }
            Err(why) => feed_imports::fail(db, id, &why.to_string(), Utc::now()).await,
        }
    }
}
