//! What compiling, planning and driving runs depend on, built once by the command line (from
//! its arguments) and handed down; a test builds its own. Nothing here is reached through a
//! global.

use std::sync::Arc;

use super::clock::{Clock, SystemClock};
use super::secrets::Redactors;
use crate::actions::Registry;
use crate::aws::AwsContext;

/// The registry of actions, the AWS context, the clock, and the secrets of the runs being
/// driven (which the log writer scrubs with). Cloning shares them.
#[derive(Clone)]
pub struct Services {
    /// Every action a step can name.
    pub registry: Arc<Registry>,
    /// AWS configuration and clients, for the steps and for plan's live values.
    pub aws: Arc<AwsContext>,
    /// Where the engine reads the time.
    pub clock: Arc<dyn Clock>,
    /// The redactor of each run being driven, registered by its driver.
    pub redactors: Redactors,
}

impl Services {
    /// The built-in actions, the system clock and `aws`, with no run registered.
    pub fn new(aws: AwsContext) -> Self {
        Self {
            registry: Arc::new(Registry::builtin()),
            aws: Arc::new(aws),
            clock: Arc::new(SystemClock),
            redactors: Redactors::new(),
        }
    }
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("registry", &self.registry)
            .field("aws", &self.aws)
            .finish_non_exhaustive()
    }
}
