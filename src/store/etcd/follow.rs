//! Reading a run's journal from an entry on: a read begins at the bundle holding that entry,
//! never at the run's first.

use etcd_client::{Client, GetOptions, ResponseHeader, Txn, TxnOp, TxnOpResponse};

use super::super::format::{JournalOnly, decode};
use super::super::{JournalEntry, StoreError};
use super::EtcdStore;

/// How many entries before `from` a read first looks for the bundle holding entry `from`,
/// when no bundle begins there; each further look goes 16 times as far back.
const LOOK_BACK: u64 = 16;

/// Where one run's record and bundles are.
#[derive(Clone)]
struct RunKeys {
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

/// The entries from `from` on of `bundles` (as stored, in journal order).
fn entries(run_id: &str, bundles: &[Vec<u8>], from: u64) -> Result<Vec<JournalEntry>, StoreError> {
    let mut entries = Vec::new();
    for bundle in bundles {
        let bundle: JournalOnly = decode(run_id, bundle)?;
        entries.extend(bundle.journal.into_iter().filter(|e| e.seq >= from));
    }
    Ok(entries)
}

/// Reads run `keys`'s journal from entry `from` on, at one revision: the bundles holding it,
/// in journal order. One request reads the bundles keyed from `from` on. When none of them
/// begins at `from`, the bundle holding `from` began before it: it is the last of those keyed
/// in the 16 entries before `from` (else 256, ...), read at the same revision. Not one read of
/// the bundles before `from` sorted backwards and limited to one: etcd reads every key of a
/// sorted range before it sorts, that is the whole journal.
async fn fetch(
    mut client: Client,
    keys: &RunKeys,
    from: u64,
) -> Result<Vec<Vec<u8>>, etcd_client::Error> {
    let reads = [TxnOp::get(
        keys.bundle(from),
        Some(GetOptions::new().with_range(keys.bundles_end())),
    )];
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
    let begins_at_from = after
        .first()
        .is_some_and(|kv| kv.key() == keys.bundle(from).as_bytes());
    let mut bundles: Vec<Vec<u8>> = Vec::with_capacity(after.len() + 1);
    if from > 0 && !begins_at_from {
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
    Ok(bundles)
}

impl EtcdStore {
    fn run_keys(&self, run_id: &str) -> RunKeys {
        RunKeys {
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
        let bundles = self.call(move |c| {
            let keys = keys.clone();
            async move { fetch(c, &keys, from).await }
        })?;
        entries(run_id, &bundles, from)
    }
}
