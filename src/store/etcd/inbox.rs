//! A run's inbox on etcd: requests (votes, cancels) left by any command for the process that
//! drives the run, each taken by that process or withdrawn by its sender, never both, and
//! their answers.

use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse};

use super::super::{Inbox, StoreError};
use super::EtcdStore;

impl EtcdStore {
    /// Takes request `id` out of run `run_id`'s inbox to apply it (see
    /// [`Inbox::take_request`]).
    pub fn take_request(&self, run_id: &str, id: &str) -> Result<bool, StoreError> {
        self.move_out_of_inbox(run_id, id, true)
    }

    /// Withdraws request `id` of run `run_id` while it still waits (see [`Inbox::withdraw`]).
    pub fn withdraw(&self, run_id: &str, id: &str) -> Result<bool, StoreError> {
        self.move_out_of_inbox(run_id, id, false)
    }

    /// Takes request `id` out of run `run_id`'s inbox, in one transaction that holds only
    /// while the request is still there: by its driver (`taken`: marked as being applied) or
    /// by its sender (withdrawn). True when this call took it out.
    fn move_out_of_inbox(&self, run_id: &str, id: &str, taken: bool) -> Result<bool, StoreError> {
        let waiting = self.key(&["inbox", run_id, id]);
        let mut ops = vec![TxnOp::delete(waiting.clone(), None)];
        if taken {
            ops.push(TxnOp::put(
                self.key(&["taken", run_id, id]),
                Vec::new(),
                None,
            ));
        }
        let txn = Txn::new()
            .when([Compare::version(waiting, CompareOp::Greater, 0)])
            .and_then(ops);
        self.call(move |mut c| {
            let txn = txn.clone();
            async move { Ok(c.txn(txn).await?.succeeded()) }
        })
    }

    /// Leaves `request` in run `run_id`'s inbox; its id (see [`Inbox::post`]).
    pub fn post(&self, run_id: &str, request: &[u8]) -> Result<String, StoreError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let id = format!("{nanos:024}-{}", std::process::id());
        let (key, value) = (self.key(&["inbox", run_id, &id]), request.to_vec());
        self.call(move |mut c| {
            let (key, value) = (key.clone(), value.clone());
            async move {
                c.put(key, value, None).await?;
                Ok(())
            }
        })?;
        Ok(id)
    }

    /// The requests waiting in run `run_id`'s inbox, oldest first (see [`Inbox::inbox`]).
    pub fn inbox(&self, run_id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .list(self.key(&["inbox", run_id, ""]))?
            .into_iter()
            .map(|(k, v)| (k.rsplit('/').next().unwrap_or_default().to_string(), v))
            .collect())
    }

    /// Answers request `id`, which this process took (see [`Inbox::answer`]).
    pub fn answer(&self, run_id: &str, id: &str, answer: &[u8]) -> Result<(), StoreError> {
        let txn = Txn::new().and_then([
            TxnOp::delete(self.key(&["taken", run_id, id]), None),
            TxnOp::put(self.key(&["answers", run_id, id]), answer.to_vec(), None),
        ]);
        self.call(move |mut c| {
            let txn = txn.clone();
            async move {
                c.txn(txn).await?;
                Ok(())
            }
        })
    }

    /// Takes the answer to request `id`, once there is one (see [`Inbox::take_answer`]).
    pub fn take_answer(&self, run_id: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let answer = self.key(&["answers", run_id, id]);
        let txn = Txn::new().and_then([
            TxnOp::get(answer.clone(), None),
            TxnOp::delete(answer, None),
        ]);
        self.call(move |mut c| {
            let txn = txn.clone();
            async move {
                let response = c.txn(txn).await?;
                Ok(response.op_responses().into_iter().find_map(|op| match op {
                    TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
                    _ => None,
                }))
            }
        })
    }
}

impl Inbox for EtcdStore {
    fn post(&self, run_id: &str, request: &[u8]) -> Result<String, StoreError> {
        EtcdStore::post(self, run_id, request)
    }

    fn inbox(&self, run_id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        EtcdStore::inbox(self, run_id)
    }

    fn take_request(&self, run_id: &str, id: &str) -> Result<bool, StoreError> {
        EtcdStore::take_request(self, run_id, id)
    }

    fn withdraw(&self, run_id: &str, id: &str) -> Result<bool, StoreError> {
        EtcdStore::withdraw(self, run_id, id)
    }

    fn answer(&self, run_id: &str, id: &str, answer: &[u8]) -> Result<(), StoreError> {
        EtcdStore::answer(self, run_id, id, answer)
    }

    fn take_answer(&self, run_id: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        EtcdStore::take_answer(self, run_id, id)
    }
}
