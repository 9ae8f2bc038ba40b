//! Reading a run's journal from an entry on, and following it as it grows. A read begins at the
//! bundle holding that entry, never at the run's first; a follower then watches the run's
//! bundles and record from the revision it read, and etcd sends it each commit once, as it is
//! made: a follower waiting for what is new reads nothing, so a hundred of them cost the
//! cluster no more reads than one.
//!
//! A watch can end under a follower (its member killed, the watch cancelled): the follower then
//! reads again from the first entry it has not handed on, and watches from that read's
//! revision. It never misses an entry and never hands one on twice.
//!
//! A run that rests while its journal, read at the same revision as its record, lacks entries
//! the record counts (a damaged or tampered store) is an error naming the run: those entries
//! will never come.

use std::collections::VecDeque;

use etcd_client::{
    Client, EventType, GetOptions, ResponseHeader, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use tokio::sync::mpsc;

use super::super::follow::{Changed, JournalFollower, JournalNews};
use super::super::format::{JournalOnly, decode};
use super::super::{JournalEntry, RunRecord, StoreError};
use super::{EtcdStore, Job, RETRY_PAUSE, io, retried};

/// How many entries before `from` a read first looks for the bundle holding entry `from`,
/// when no bundle begins there; each further look goes 16 times as far back.
const LOOK_BACK: u64 = 16;

/// Where one run's record and bundles are.
#[derive(Clone)]
struct RunKeys {
    run_id: String,
    /// `P/runs/RUN`.
    record: String,
    /// `P/bundles/RUN/`: a bundle's key is this and the position of its first entry.
    bundles: String,
}

impl RunKeys {
    /// The key of the bundle whose first entry is `seq`.
    fn bundle(&self, seq: u64) -> String {
        format!("{}{seq:020}", self.bundles)
    }

    /// The end of the range of the run's bundles: the prefix with its last byte (`/`) plus one.
    fn bundles_end(&self) -> Vec<u8> {
        let mut end = self.bundles.clone().into_bytes();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        end
    }
}

/// What one read of a run's journal brought back, not decoded yet.
struct Fetched {
    /// The bundles holding entry `from` and the ones after it, in journal order.
    bundles: Vec<Vec<u8>>,
    /// The run's record, when it was asked for and the run has one.
    record: Option<Vec<u8>>,
    /// The revision of the store everything was read at.
    revision: i64,
}

impl Fetched {
    /// The entries from `from` on.
    fn entries(&self, run_id: &str, from: u64) -> Result<Vec<JournalEntry>, StoreError> {
        let mut entries = Vec::new();
        for bundle in &self.bundles {
            let bundle: JournalOnly = decode(run_id, bundle)?;
            entries.extend(bundle.journal.into_iter().filter(|e| e.seq >= from));
        }
        Ok(entries)
    }
}

/// Reads run `keys`'s journal from entry `from` on at one revision, and its record when
/// `with_record`. One request reads the bundles keyed from `from` on (and the record). When
/// `look_back` and none of them begins at `from`, the bundle holding `from` began before it:
/// it is the last of those keyed in the 16 entries before `from` (else 256, ...), read at the
/// same revision. Not one read of the bundles before `from` sorted backwards and limited to
/// one: etcd reads every key of a sorted range before it sorts, that is the whole journal.
async fn fetch(
    mut client: Client,
    keys: &RunKeys,
    from: u64,
    with_record: bool,
    look_back: bool,
) -> Result<Fetched, etcd_client::Error> {
    let mut reads = vec![TxnOp::get(
        keys.bundle(from),
        Some(GetOptions::new().with_range(keys.bundles_end())),
    )];
    if with_record {
        reads.push(TxnOp::get(keys.record.clone(), None));
    }
    let response = client.txn(Txn::new().and_then(reads)).await?;
    let revision = response.header().map_or(0, ResponseHeader::revision);
    let mut gets = response
        .op_responses()
        .into_iter()
        .filter_map(|op| match op {
            TxnOpResponse::Get(get) => Some(get),
            _ => None,
        });
    let after = gets.next().map(|g| g.kvs().to_vec()).unwrap_or_default();
    let record = gets
        .next()
        .and_then(|g| g.kvs().first().map(|kv| kv.value().to_vec()));
    let begins_at_from = after
        .first()
        .is_some_and(|kv| kv.key() == keys.bundle(from).as_bytes());
    let mut bundles: Vec<Vec<u8>> = Vec::with_capacity(after.len() + 1);
    if look_back && from > 0 && !begins_at_from {
        let mut span = LOOK_BACK;
        loop {
            let start = from.saturating_sub(span);
            let before = client
                .get(
                    keys.bundle(start),
                    Some(
                        GetOptions::new()
                            .with_range(keys.bundle(from))
                            .with_revision(revision),
                    ),
                )
                .await?;
            if let Some(holder) = before.kvs().last() {
                bundles.push(holder.value().to_vec());
                break;
            }
            if start == 0 {
                break;
            }
            span = span.saturating_mul(16);
        }
    }
    bundles.extend(after.iter().map(|kv| kv.value().to_vec()));
    Ok(Fetched {
        bundles,
        record,
        revision,
    })
}

/// What a follower knows of the run's record.
#[derive(Debug, Clone, Copy)]
enum Record {
    /// Not read yet.
    Unread,
    /// The run has none.
    Missing,
    /// Whether the run is under way, and how many entries its journal holds.
    Read { under_way: bool, journal_len: u64 },
}

impl Record {
    fn of(record: Option<&RunRecord>) -> Record {
        record.map_or(Record::Missing, |r| Record::Read {
            under_way: r.status.is_under_way(),
            journal_len: r.journal_len,
        })
    }

    /// The run's journal length, when the run rests and its journal is said to go past entry
    /// `from`, the first not handed on.
    fn rests_past(self, from: u64) -> Option<u64> {
        match self {
            Record::Read {
                under_way: false,
                journal_len,
            } if journal_len > from => Some(journal_len),
            _ => None,
        }
    }
}

/// Run `run_id` rests with `journal_len` entries by its record, yet its journal, read at the
/// same revision, ends before entry `from`.
fn cut_short(run_id: &str, journal_len: u64, from: u64) -> StoreError {
    StoreError::BadRecord {
        run: run_id.to_string(),
        reason: format!(
            "its record counts {journal_len} journal entries, but entry {from} is not in its journal: the store is damaged or was tampered with"
        ),
    }
}

/// What the watching task hands on to its follower.
enum News {
    /// Entries, in order, each the one after the last handed on.
    Entries(Vec<JournalEntry>),
    /// The run's record as it now is.
    Record(Record),
    /// The run cannot be followed any more (the cluster did not answer in time, or a record
    /// could not be read): the task has ended.
    Failed(StoreError),
}

/// A follower of one run on etcd (see the module's documentation). What its task hands on
/// waits here until read.
pub(super) struct EtcdFollower {
    news: mpsc::UnboundedReceiver<News>,
    waiting: VecDeque<News>,
    /// The first entry not read yet.
    from: u64,
    /// The run's record as last handed on.
    record: Record,
}

impl EtcdStore {
    fn run_keys(&self, run_id: &str) -> RunKeys {
        RunKeys {
            run_id: run_id.to_string(),
            record: self.key(&["runs", run_id]),
            bundles: self.key(&["bundles", run_id, ""]),
        }
    }

    /// Run `run_id`'s journal from entry `from` on (see [`fetch`]).
    pub(super) fn read_journal_from(
        &self,
        run_id: &str,
        from: u64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let keys = self.run_keys(run_id);
        let fetched = self.call({
            let keys = keys.clone();
            move |c| {
                let keys = keys.clone();
                async move { fetch(c, &keys, from, false, true).await }
            }
        })?;
        fetched.entries(run_id, from)
    }

    /// Follows run `run_id` from entry `from` on, with a task on the store's thread.
    pub(super) fn follower(&self, run_id: &str, from: u64) -> Result<EtcdFollower, StoreError> {
        let (tx, news) = mpsc::unbounded_channel();
        let keys = self.run_keys(run_id);
        let job: Job = Box::new(move |client| Box::pin(watch_run(client, keys, from, tx)));
        self.jobs
            .send(job)
            .map_err(|_| io("the etcd client thread stopped"))?;
        Ok(EtcdFollower {
            news,
            waiting: VecDeque::new(),
            from,
            record: Record::Unread,
        })
    }
}

impl JournalFollower for EtcdFollower {
    fn read(&mut self) -> Result<JournalNews, StoreError> {
        while let Ok(news) = self.news.try_recv() {
            self.waiting.push_back(news);
        }
        let mut entries = Vec::new();
        while let Some(news) = self.waiting.pop_front() {
            match news {
                News::Entries(new) => {
                    for entry in new {
                        if entry.seq == self.from {
                            self.from += 1;
                            entries.push(entry);
                        }
                    }
                }
                News::Record(record) => self.record = record,
                News::Failed(e) if entries.is_empty() => return Err(e),
                failed @ News::Failed(_) => {
                    // The entries read before it are shown first.
                    self.waiting.push_front(failed);
                    break;
                }
            }
        }
        // Until the run's record is read, the run may go on; then it goes on while it is under
        // way, or while entries its record counts have not been read (the watch hands on a
        // commit's record and its bundle separately).
        let under_way = match self.record {
            Record::Unread => true,
            Record::Missing => false,
            Record::Read {
                under_way,
                journal_len,
            } => under_way || self.from < journal_len,
        };
        Ok(JournalNews { entries, under_way })
    }

    fn changed(&mut self) -> Changed<'_> {
        Box::pin(async move {
            if !self.waiting.is_empty() {
                return;
            }
            let news = self.news.recv().await.unwrap_or_else(|| {
                News::Failed(io("the etcd client thread stopped following the run"))
            });
            self.waiting.push_back(news);
        })
    }
}

/// How a watch ended.
enum Ended {
    /// The follower is gone: nothing more to do.
    Dropped,
    /// The watch broke (a member gone, the watch cancelled, an entry missed): read again.
    Broken,
    /// A record could not be read.
    Failed(StoreError),
}

/// The follower's task: a read of the journal from `from` and of the run's record, then a
/// watch of both from the revision read, again and again while the follower is there.
async fn watch_run(
    client: Client,
    keys: RunKeys,
    mut from: u64,
    news: mpsc::UnboundedSender<News>,
) {
    // Only a follower's first position may be inside a bundle: after a read or a watched
    // commit, it is where the next bundle begins.
    let mut look_back = true;
    loop {
        let read = retried(&client, |c| fetch(c, &keys, from, true, look_back))
            .await
            .and_then(|fetched| {
                let record = match &fetched.record {
                    Some(bytes) => Some(decode::<RunRecord>(&keys.run_id, bytes)?),
                    None => None,
                };
                Ok((
                    fetched.entries(&keys.run_id, from)?,
                    record,
                    fetched.revision,
                ))
            });
        let (entries, record, revision) = match read {
            Ok(read) => read,
            Err(e) => {
                let _ = news.send(News::Failed(e));
                return;
            }
        };
        look_back = false;
        if let Some(last) = entries.last() {
            from = last.seq + 1;
        }
        let record = Record::of(record.as_ref());
        if news.send(News::Entries(entries)).is_err() {
            return;
        }
        // Read at one revision: a run that rests holds every entry its record counts, unless
        // its journal was cut short (a damaged or tampered store). Waiting for those entries
        // would be waiting forever.
        if let Some(journal_len) = record.rests_past(from) {
            let _ = news.send(News::Failed(cut_short(&keys.run_id, journal_len, from)));
            return;
        }
        if news.send(News::Record(record)).is_err() {
            return;
        }
        match watch(&client, &keys, revision + 1, &mut from, &news).await {
            Ended::Dropped => return,
            Ended::Failed(e) => {
                let _ = news.send(News::Failed(e));
                return;
            }
            Ended::Broken => {}
        }
        tokio::select! {
            () = news.closed() => return,
            () = tokio::time::sleep(RETRY_PAUSE) => {}
        }
    }
}

/// Watches the run's bundles and record from `revision` on, handing on what is new, until the
/// watch ends or the follower goes.
async fn watch(
    client: &Client,
    keys: &RunKeys,
    revision: i64,
    from: &mut u64,
    news: &mpsc::UnboundedSender<News>,
) -> Ended {
    let mut client = client.clone();
    let since = WatchOptions::new().with_start_revision(revision);
    let Ok((mut watcher, mut stream)) = client
        .watch(keys.bundles.clone(), Some(since.clone().with_prefix()))
        .await
    else {
        return Ended::Broken;
    };
    if watcher
        .watch(keys.record.clone(), Some(since))
        .await
        .is_err()
    {
        return Ended::Broken;
    }
    loop {
        let message = tokio::select! {
            () = news.closed() => {
                let _ = watcher.cancel().await;
                return Ended::Dropped;
            }
            message = stream.message() => message,
        };
        let Ok(Some(response)) = message else {
            return Ended::Broken;
        };
        if response.canceled() {
            return Ended::Broken;
        }
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            let handed = if kv.key() == keys.record.as_bytes() {
                let record = match event.event_type() {
                    EventType::Put => match decode::<RunRecord>(&keys.run_id, kv.value()) {
                        Ok(record) => Record::of(Some(&record)),
                        Err(e) => return Ended::Failed(e),
                    },
                    EventType::Delete => Record::Missing,
                };
                if record.rests_past(*from).is_some() {
                    // The bundle of the commit that made the run rest may come after its
                    // record: a read at one revision tells it from a journal cut short.
                    return Ended::Broken;
                }
                news.send(News::Record(record))
            } else if event.event_type() == EventType::Put {
                let bundle: JournalOnly = match decode(&keys.run_id, kv.value()) {
                    Ok(bundle) => bundle,
                    Err(e) => return Ended::Failed(e),
                };
                if bundle.journal.first().is_some_and(|e| e.seq > *from) {
                    // Entries between were not handed on: read them.
                    return Ended::Broken;
                }
                let new: Vec<JournalEntry> = bundle
                    .journal
                    .into_iter()
                    .filter(|e| e.seq >= *from)
                    .collect();
                if let Some(last) = new.last() {
                    *from = last.seq + 1;
                }
                news.send(News::Entries(new))
            } else {
                continue;
            };
            if handed.is_err() {
                return Ended::Dropped;
            }
        }
    }
}
