//! Event source mappings for RabbitMQ queues: Lambda's five
//! EventSourceMapping operations (`api`), and one poller per enabled mapping
//! (`poller`) that reads a queue in batches and acknowledges a batch only
//! after the function succeeded with it.
//!
//! Brokers are named by the daemon: `lamb serve --rabbitmq
//! NAME=amqp://USER:PASS@HOST:PORT[/VHOST]`; a mapping's `EventSourceArn`
//! `arn:aws:mq:<region>:<account>:broker:NAME:<id>` picks one, and its
//! `VIRTUAL_HOST` source access configuration the virtual host.
//!
//! A supervisor reads the mappings from the registry twice a second and
//! starts, restarts (on a change) or stops their pollers, so the API only
//! writes the registry and a restart of the daemon resumes every mapping.

mod api;
pub mod brokers;
mod poller;

pub use api::routes;
pub use brokers::{Broker, BrokerSyntax, Brokers};

use crate::state::AppState;
use lamb_protocol::errors::Chain;
use lamb_types::esm::EventSourceMappingConfiguration;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;

/// What makes a poller restart when it changes.
fn fingerprint(m: &EventSourceMappingConfiguration) -> String {
    format!(
        "{}\0{}\0{}\0{}\0{:?}\0{:?}",
        m.function_arn,
        m.event_source_arn,
        m.batch_size,
        m.maximum_batching_window_in_seconds,
        m.queues,
        m.source_access_configurations
    )
}

struct Running {
    fingerprint: String,
    stop: watch::Sender<bool>,
}

/// Starts the supervisor of the pollers; once `stop` is set it stops them
/// and ends.
pub fn start(st: AppState, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut running: HashMap<String, Running> = HashMap::new();
        loop {
            match st.blocking(|s| Ok(s.registry.list_event_source_mappings()?)).await {
                Ok(mappings) => reconcile(&st, &mut running, mappings),
                Err(e) => tracing::error!(error = %Chain(&e), "cannot read event source mappings"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        for r in running.into_values() {
            let _ = r.stop.send(true);
        }
    })
}

fn reconcile(st: &AppState, running: &mut HashMap<String, Running>, mappings: Vec<EventSourceMappingConfiguration>) {
    let wanted: HashMap<String, EventSourceMappingConfiguration> = mappings
        .into_iter()
        .filter(|m| m.enabled())
        .map(|m| (m.uuid.clone(), m))
        .collect();
    running.retain(|uuid, r| {
        let keep = wanted.get(uuid).is_some_and(|m| fingerprint(m) == r.fingerprint);
        if !keep {
            let _ = r.stop.send(true);
        }
        keep
    });
    for (uuid, m) in wanted {
        if running.contains_key(&uuid) {
            continue;
        }
        let broker = lamb_types::esm::broker_name(&st.ctx, &m.event_source_arn)
            .ok()
            .and_then(|n| st.brokers.get(n).cloned());
        let Some(broker) = broker else {
            tracing::warn!(uuid, arn = %m.event_source_arn, "mapping names a broker this daemon was not given");
            continue;
        };
        let (tx, rx) = watch::channel(false);
        running.insert(
            uuid.clone(),
            Running {
                fingerprint: fingerprint(&m),
                stop: tx,
            },
        );
        tokio::spawn(poller::run(st.clone(), m, broker, rx));
    }
}
